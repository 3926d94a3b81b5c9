"""Infobip senders against the fake Infobip server, over real sockets."""

from __future__ import annotations

import pytest

from pagerpal_worker.providers import build_senders
from pagerpal_worker.providers.base import OutboundMessage
from pagerpal_worker.providers.infobip import (
    InfobipSmsSender,
    InfobipWhatsAppSender,
    infobip_number,
    normalize_base_url,
    parse_template_setting,
)
from tests.fakes.infobip import SMS_PATH, WHATSAPP_TEMPLATE_PATH, WHATSAPP_TEXT_PATH
from tests.providers.conftest import API_KEY, closed_port, provider_settings


def page(n=1, channel="sms", to="+41793026727", body="[CRITICAL] DB down (grafana) http://x/incidents/1"):
    return OutboundMessage(notification_id=n, channel=channel, destination=to,
                           subject="[CRITICAL] DB down", body=body, incident_id=1)


def sms_sender(url, **kw):
    return InfobipSmsSender(base_url=url, api_key=kw.pop("api_key", API_KEY), sender="PagerPal",
                            timeout=kw.pop("timeout", 5.0), **kw)


def test_sms_is_accepted_with_the_providers_message_id(infobip):
    sender = sms_sender(infobip.url)
    first, second = sender.send(page(1)), sender.send(page(2))
    assert first.outcome == second.outcome == "accepted"
    assert first.provider_message_id and first.provider_message_id != second.provider_message_id
    assert first.provider_message_id in infobip.sent
    assert first.provider_status == "PENDING_ACCEPTED"
    request = infobip.requests_to(SMS_PATH)[0]
    assert request.headers["Authorization"] == f"App {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    message = request.body["messages"][0]
    assert message["from"] == "PagerPal"
    assert message["destinations"] == [{"to": "41793026727"}]
    assert message["text"] == page().body
    assert message["callbackData"] == "pagerpal-notification-1"


def test_whatsapp_text_message(infobip):
    sender = InfobipWhatsAppSender(base_url=infobip.url, api_key=API_KEY, sender="+441134960000")
    result = sender.send(page(channel="whatsapp", body="*[HIGH] Disk*\nSource: x\nfull\nhttp://x/incidents/2"))
    assert result.outcome == "accepted" and result.provider_message_id in infobip.sent
    body = infobip.requests_to(WHATSAPP_TEXT_PATH)[0].body
    assert body["from"] == "441134960000" and body["to"] == "41793026727"
    assert body["content"] == {"text": "*[HIGH] Disk*\nSource: x\nfull\nhttp://x/incidents/2"}


def test_whatsapp_template_when_configured(infobip):
    sender = InfobipWhatsAppSender(base_url=infobip.url, api_key=API_KEY, sender="441134960000",
                                   template="pagerpal_page:en_GB")
    msg = OutboundMessage(notification_id=7, channel="whatsapp", destination="+41793026727",
                          subject="[HIGH] Disk full",
                          body="*[HIGH] Disk full*\nSource: grafana\nroot at 99%\nhttp://x/incidents/2")
    result = sender.send(msg)
    assert result.outcome == "accepted" and result.provider_message_id in infobip.sent
    assert not infobip.requests_to(WHATSAPP_TEXT_PATH)
    entry = infobip.requests_to(WHATSAPP_TEMPLATE_PATH)[0].body["messages"][0]
    assert entry["content"]["templateName"] == "pagerpal_page"
    assert entry["content"]["language"] == "en_GB"
    placeholders = entry["content"]["templateData"]["body"]["placeholders"]
    assert placeholders[0] == "[HIGH] Disk full"
    assert "\n" not in placeholders[1] and "http://x/incidents/2" in placeholders[1]
    assert "grafana" in placeholders[1] and "root at 99%" in placeholders[1]


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_rate_limits_are_retryable(infobip, status):
    infobip.fail_next(status)
    result = sms_sender(infobip.url).send(page())
    assert result.outcome == "retryable"
    assert str(status) in result.error
    # The fake recovers: the retry goes through.
    assert sms_sender(infobip.url).send(page()).outcome == "accepted"


def test_wrong_api_key_is_permanent_and_says_why(infobip):
    result = sms_sender(infobip.url, api_key="not-the-right-key").send(page())
    assert result.outcome == "permanent"
    assert "401" in result.error and "INFOBIP_API_KEY" in result.error
    assert "not-the-right-key" not in result.error


def test_validation_error_is_permanent_with_the_providers_reason(infobip):
    infobip.fail_next(400, text="Invalid sender")
    result = sms_sender(infobip.url).send(page())
    assert result.outcome == "permanent" and "BAD_REQUEST: Invalid sender" in result.error


def test_wrong_base_url_path_is_permanent(infobip):
    result = sms_sender(infobip.url + "/nope").send(page())
    assert result.outcome == "permanent" and "INFOBIP_BASE_URL" in result.error


def test_rejected_status_in_a_200_is_permanent(infobip):
    # Infobip answers 200 but rejects an unroutable destination in the status group.
    infobip.plan(message_status={"groupId": 5, "groupName": "REJECTED", "id": 51,
                                 "name": "REJECTED_DESTINATION", "description": "Invalid destination address"})
    result = sms_sender(infobip.url).send(page())
    assert result.outcome == "permanent" and "REJECTED_DESTINATION" in result.error


def test_a_hanging_server_times_out_as_retryable(infobip):
    infobip.hang_next(5.0)
    result = sms_sender(infobip.url, timeout=0.3).send(page())
    assert result.outcome == "retryable" and "timed out" in result.error


def test_nothing_listening_is_retryable():
    result = sms_sender(f"http://127.0.0.1:{closed_port()}").send(page())
    assert result.outcome == "retryable" and "could not reach Infobip" in result.error


def test_invalid_destination_is_permanent_without_a_request(infobip):
    result = sms_sender(infobip.url).send(page(to="call me maybe"))
    assert result.outcome == "permanent" and "E.164" in result.error
    assert infobip.requests == []


def test_a_plan_for_one_number_leaves_others_alone(infobip):
    infobip.plan(500, to="41790000001", count=None)
    sender = sms_sender(infobip.url)
    assert sender.send(page(to="+41790000001")).outcome == "retryable"
    assert sender.send(page(to="+41790000002")).outcome == "accepted"
    assert sender.send(page(to="+41790000001")).outcome == "retryable"


def test_helpers():
    assert normalize_base_url("abcd.api.infobip.com/") == "https://abcd.api.infobip.com"
    assert normalize_base_url("http://127.0.0.1:9") == "http://127.0.0.1:9"
    assert infobip_number("+41 79 302 67 27") == "41793026727"
    assert infobip_number("0041793026727") == "41793026727"
    assert infobip_number("12") is None and infobip_number("+41abc") is None
    assert parse_template_setting("page_alert") == ("page_alert", "en")
    assert parse_template_setting("page_alert:de") == ("page_alert", "de")


def test_build_senders_uses_settings_and_the_fake(infobip):
    senders = build_senders(provider_settings(infobip_url=infobip.url))
    assert senders["sms"].send(page()).outcome == "accepted"
    assert senders["whatsapp"].send(page(channel="whatsapp")).outcome == "accepted"
    assert len(infobip.requests) == 2


def test_incomplete_settings_fail_naming_the_missing_variables(infobip):
    senders = build_senders(provider_settings(infobip_url=infobip.url, INFOBIP_API_KEY="",
                                              INFOBIP_WHATSAPP_SENDER="", SMTP_HOST=""))
    sms = senders["sms"].send(page())
    assert sms.outcome == "permanent" and sms.error == "not configured: missing INFOBIP_API_KEY"
    wa = senders["whatsapp"].send(page(channel="whatsapp"))
    assert wa.error == "not configured: missing INFOBIP_API_KEY, INFOBIP_WHATSAPP_SENDER"
    assert senders["email"].send(page(channel="email", to="a@example.test")).error == \
        "not configured: missing SMTP_HOST"
    assert infobip.requests == []


def test_fake_runs_as_a_process_and_records_json_lines(tmp_path):
    import json
    import subprocess
    import sys

    record = tmp_path / "requests.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.infobip", "--port", "0", "--record", str(record),
                             "--api-key", API_KEY], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("LISTENING ")
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        import requests
        requests.post(url + "/__fake__/plan", json={"status": 503, "count": 1}, timeout=5)
        sender = sms_sender(url)
        assert sender.send(page()).outcome == "retryable"
        assert sender.send(page()).outcome == "accepted"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    lines = [json.loads(x) for x in record.read_text().splitlines()]
    assert [x["response_status"] for x in lines] == [503, 200]
    assert lines[1]["path"] == SMS_PATH and lines[1]["body"]["messages"][0]["text"] == page().body
