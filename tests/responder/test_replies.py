"""Reply commands: Infobip forwards "4821 ack" (MO_JSON_2 SMS, or WhatsApp) and the page is answered."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pagerpal_core.models import Notification, ReplyCode
from pagerpal_core.services.replies import (
    MAX_ANSWERS,
    BadInbound,
    Command,
    normalize_number,
    parse_command,
    parse_inbound,
)
from tests.responder.conftest import ADA_SMS, ADA_WHATSAPP, BEN_SMS, INBOUND_TOKEN, reply_code

INBOUND = "/api/v1/notifications/infobip/inbound"


def mo_json_2(sender: str, text: str, message_id: str | None = None) -> dict:
    """An inbound SMS as Infobip forwards it (format MO_JSON_2)."""
    words = text.split()
    return {"results": [{
        "messageId": message_id or uuid.uuid4().hex, "from": sender.lstrip("+"), "to": "41793026000",
        "text": text, "cleanText": " ".join(words[1:]), "keyword": words[0].upper() if words else "",
        "receivedAt": "2026-03-01T03:12:05.000+0000", "smsCount": 1,
        "price": {"pricePerMessage": 0, "currency": "EUR"}, "callbackData": None}],
        "messageCount": 1, "pendingMessageCount": 0}


def whatsapp(sender: str, text: str, message_id: str | None = None, kind: str = "TEXT") -> dict:
    """An inbound WhatsApp message as Infobip forwards it."""
    message = {"type": kind, "text": text} if kind == "TEXT" else {"type": kind, "url": "https://x.test/i.jpg"}
    return {"results": [{
        "from": sender.lstrip("+"), "to": "41793026001", "integrationType": "WHATSAPP",
        "receivedAt": "2026-03-01T03:12:05.000+0000", "messageId": message_id or uuid.uuid4().hex,
        "pairedMessageId": None, "callbackData": None, "message": message, "contact": {"name": "Ada"},
        "price": {"pricePerMessage": 0, "currency": "EUR"}}], "messageCount": 1, "pendingMessageCount": 0}


def send(r, body, *, token: str | None = INBOUND_TOKEN, query: bool = False):
    if query:
        return r.client.post(f"{INBOUND}?token={token}", json=body)
    headers = {"X-Infobip-Inbound-Token": token} if token is not None else {}
    return r.client.post(INBOUND, json=body, headers=headers)


def answers(r) -> list[tuple[str, str, str]]:
    """(channel, destination, text) of the answers queued so far."""
    return r.read(lambda s: [(n.channel, n.destination, n.body) for n in s.scalars(
        select(Notification).where(Notification.dedup_key.like("reply:%")).order_by(Notification.id))])


def paged_code(r) -> tuple[int, str]:
    incident_id = r.alert()
    r.cycle()
    [sms] = r.sms_to(ADA_SMS)
    [wa] = r.whatsapp_to(ADA_WHATSAPP)
    assert reply_code(wa) == reply_code(sms)   # one code per person and incident, on every phone channel
    return incident_id, reply_code(sms)


def test_sms_reply_acknowledges_answers_and_stops_escalation(responder):
    r = responder
    incident_id, code = paged_code(r)
    response = send(r, mo_json_2(ADA_SMS, f"  {code}   ack "))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["applied"] == 1
    incident = r.incident(incident_id)
    assert incident.status == "acknowledged" and incident.acknowledged_by_id == r.ada.id
    [ack] = [e for e in r.events(incident_id) if e.kind == "acknowledged"]
    assert ack.actor_user_id == r.ada.id and "via SMS reply" in ack.message

    assert answers(r) == [("sms", ADA_SMS, f"Acknowledged #{incident_id} Disk full on db-1")]
    r.cycle()   # the answer goes out through the outbox like any page
    assert r.sms_to(ADA_SMS)[-1] == f"Acknowledged #{incident_id} Disk full on db-1"
    r.cycle(r.later(11))
    assert r.sms_to(BEN_SMS) == []

    # Acknowledging again is answered, and changes nothing else.
    before = r.state()
    send(r, mo_json_2(ADA_SMS, f"{code} ACK"))
    after = r.state()
    assert after["incidents"] == before["incidents"] and after["events"] == before["events"]
    assert "already acknowledged by Ada Lovelace" in answers(r)[-1][2]

    # RES resolves; the code is released once another page needs one.
    send(r, mo_json_2(ADA_SMS, f"{code} res"))
    assert r.incident(incident_id).status == "resolved"
    assert answers(r)[-1][2] == f"Resolved #{incident_id} Disk full on db-1"


def test_whatsapp_bare_ack_acknowledges_the_only_open_page(responder):
    r = responder
    incident_id, _ = paged_code(r)
    response = send(r, whatsapp(ADA_WHATSAPP, "ACK"))
    assert response.status_code == 200 and response.get_json()["applied"] == 1
    incident = r.incident(incident_id)
    assert incident.status == "acknowledged" and incident.acknowledged_by_id == r.ada.id
    [ack] = [e for e in r.events(incident_id) if e.kind == "acknowledged"]
    assert "via WhatsApp reply" in ack.message
    assert answers(r) == [("whatsapp", ADA_WHATSAPP, f"Acknowledged #{incident_id} Disk full on db-1")]
    # A WhatsApp image from a known number is recorded and ignored.
    assert send(r, whatsapp(ADA_WHATSAPP, "", kind="IMAGE")).get_json()["ignored"] == 1


def test_bare_ack_with_several_open_pages_asks_for_the_code(responder):
    r = responder
    first = r.alert()
    second = r.alert(title="CPU hot on web-2", external_id="cpu-web-2")
    r.cycle()
    codes = {reply_code(t) for t in r.sms_to(ADA_SMS)}
    assert len(codes) == 2   # unique among Ada's open pages
    before = r.state()
    send(r, mo_json_2(ADA_SMS, "ack"))
    assert r.state()["incidents"] == before["incidents"]
    assert answers(r)[-1][2].startswith("2 open pages; reply with the code")
    send(r, mo_json_2(ADA_SMS, "9999 ack" if "9999" not in codes else "99999 ack"))
    assert answers(r)[-1][2].startswith("No open page 9999")
    assert r.incident(first).status == r.incident(second).status == "triggered"


def test_escalate_and_snooze_by_reply(responder):
    r = responder
    incident_id, code = paged_code(r)
    send(r, mo_json_2(ADA_SMS, f"{code} snooze 1h"))
    incident = r.incident(incident_id)
    assert incident.status == "acknowledged"
    assert answers(r)[-1][2].startswith(f"Snoozed #{incident_id} Disk full on db-1 until")
    send(r, mo_json_2(ADA_SMS, f"{code} snooze forever"))
    assert answers(r)[-1][2] == "Say how long: SNOOZE 30m, 1h or 4h"
    send(r, mo_json_2(ADA_SMS, f"{code} ESC"))
    assert r.incident(incident_id).status == "triggered"
    assert answers(r)[-1][2] == f"Escalated #{incident_id} Disk full on db-1 to level 2"
    r.cycle()
    assert len(r.sms_to(BEN_SMS)) == 1
    send(r, mo_json_2(ADA_SMS, "hello"))
    assert answers(r)[-1][2].startswith("Unknown command.")


def test_refused_and_ignored_inbound_changes_nothing(responder, make_app):
    r = responder
    incident_id, code = paged_code(r)
    before = r.state()
    good = mo_json_2(ADA_SMS, f"{code} ack")

    assert send(r, good, token="wrong-token").status_code == 401
    assert send(r, good, token=None).status_code == 401
    assert send(r, good, token="wrong-token", query=True).status_code == 401
    off = make_app().test_client().post(INBOUND, json=good, headers={"X-Infobip-Inbound-Token": INBOUND_TOKEN})
    assert off.status_code == 404
    # Unknown number: no answer, nothing recorded.
    unknown = send(r, mo_json_2("+41790000000", f"{code} ack"))
    assert unknown.status_code == 200 and unknown.get_json()["unknown_sender"] == 1
    assert send(r, mo_json_2("PagerPal", f"{code} ack")).get_json()["unknown_sender"] == 1
    # A deactivated colleague's number, or a number that is not a phone at all: same.
    for body in ([], {"results": "x"}, {"results": [1]}, {"results": [{"from": ADA_SMS[1:], "text": "ack"}]},
                 {"results": [{"messageId": "m1", "text": "ack"}]},
                 {"results": [{"messageId": "m1", "from": ADA_SMS[1:]}]},
                 {"results": [{"messageId": "m1", "from": ADA_SMS[1:], "integrationType": "WHATSAPP"}]},
                 {**good, "results": good["results"] + [{"messageId": "m2"}]}):
        response = send(r, body)
        assert response.status_code == 400, body
        assert response.get_json()["error"]["code"] == "bad_request"
    for raw in (b"{not json", b"", b"\xff\xfe", b"[1, 2"):
        response = r.client.post(INBOUND, data=raw, content_type="application/json",
                                 headers={"X-Infobip-Inbound-Token": INBOUND_TOKEN})
        assert response.status_code == 400
    assert r.state() == before
    assert r.incident(incident_id).status == "triggered"


def test_replayed_message_id_changes_nothing(responder):
    r = responder
    incident_id, code = paged_code(r)
    body = mo_json_2(ADA_SMS, f"{code} ack", message_id="ABC-123")
    assert send(r, body).get_json()["applied"] == 1
    before = r.state()
    replay = send(r, body)
    assert replay.status_code == 200 and replay.get_json()["replayed"] == 1
    assert r.state() == before
    assert len(answers(r)) == 1


def test_query_token_works_and_answers_are_rate_limited_per_number(responder):
    r = responder
    incident_id, code = paged_code(r)
    for _ in range(MAX_ANSWERS + 3):
        assert send(r, mo_json_2(ADA_SMS, f"{code} ack"), query=True).status_code == 200
    # Every reply is recorded and acted on; only the first MAX_ANSWERS are answered.
    assert r.incident(incident_id).status == "acknowledged"
    assert r.state()["inbound"] == MAX_ANSWERS + 3
    assert len(answers(r)) == MAX_ANSWERS


def test_codes_are_unique_per_person_in_the_schema_and_released_after_resolve(responder):
    r = responder
    first, code = paged_code(r)
    send(r, mo_json_2(ADA_SMS, f"{code} res"))
    second = r.alert(title="CPU hot on web-2", external_id="cpu-web-2")
    r.cycle()
    rows = r.read(lambda s: [(c.incident_id, c.released_at is not None) for c in s.scalars(
        select(ReplyCode).where(ReplyCode.user_id == r.ada.id).order_by(ReplyCode.id))])
    assert rows == [(first, True), (second, False)]

    def duplicate(s):
        active = s.scalar(select(ReplyCode).where(ReplyCode.incident_id == second))
        s.add(ReplyCode(user_id=active.user_id, incident_id=first, code=active.code))
        s.flush()
    with pytest.raises(IntegrityError):
        r.read(duplicate)


# --- parsing (pure) ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("4821 ACK", Command("ack", "4821")),
    ("  4821   ack  ", Command("ack", "4821")),
    ("4821 Res", Command("resolve", "4821")),
    ("4821 resolve", Command("resolve", "4821")),
    ("4821 esc", Command("escalate", "4821")),
    ("4821 SNOOZE 30m", Command("snooze", "4821", 30)),
    ("4821 snooze 4h", Command("snooze", "4821", 240)),
    ("ack", Command("ack", None)),
    ("4821ack", Command("ack", "4821")),
])
def test_commands(text, expected):
    assert parse_command(text) == expected


@pytest.mark.parametrize("text", ["", "4821", "hello", "4821 ack now", "12 ack", "1234567 ack", "snooze",
                                  "4821 snooze 0m", "4821 snooze 25h"])
def test_unrecognised_commands_say_why(text):
    command = parse_command(text)
    assert command.verb is None and command.problem


def test_numbers_normalise_to_e164():
    assert normalize_number("41793026727") == "+41793026727"
    assert normalize_number("+41 79 302 67 27") == "+41793026727"
    assert normalize_number("0041793026727") == "+41793026727"
    assert normalize_number("PagerPal") is None and normalize_number(None) is None


def test_parse_inbound_shapes():
    [sms] = parse_inbound(mo_json_2(ADA_SMS, "4821 ack", message_id="m-1"))
    assert (sms.channel, sms.sender, sms.text, sms.message_id) == ("sms", ADA_SMS, "4821 ack", "m-1")
    assert sms.received_at is not None
    [wa] = parse_inbound(whatsapp(ADA_WHATSAPP, "ack"))
    assert (wa.channel, wa.sender, wa.text) == ("whatsapp", ADA_WHATSAPP, "ack")
    assert parse_inbound({"results": [], "messageCount": 0, "pendingMessageCount": 0}) == []
    with pytest.raises(BadInbound):
        parse_inbound({"results": [{"messageId": "x" * 201, "from": "41793026727", "text": "ack"}]})
