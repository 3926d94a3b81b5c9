"""Provider health (names, never values) and `flask pagerpal send-test-notification`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from pagerpal_core.models import Notification
from pagerpal_core.services.provider_health import provider_health_report
from tests.providers.conftest import API_KEY, SMTP_PASSWORD, provider_settings

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


def test_health_reports_missing_settings_by_name_only():
    settings = provider_settings(infobip_url="", SMTP_USER="pager", SMTP_PASSWORD=SMTP_PASSWORD,
                                 INFOBIP_RECEIPT_TOKEN="tok-1234567")
    report = provider_health_report(settings)
    assert report["mode"] == "safe" and report["sending_enabled"] is False
    assert report["receipt_token_configured"] is True
    channels = {c["channel"]: c for c in report["channels"]}
    assert channels["sms"]["configured"] is False and channels["sms"]["missing"] == ["INFOBIP_BASE_URL"]
    assert channels["email"]["configured"] is True and channels["email"]["provider"] == "smtp"
    assert "safe mode" in channels["email"]["summary"]
    text = json.dumps(report)
    for secret in (API_KEY, SMTP_PASSWORD, "tok-1234567"):
        assert secret not in text


def test_health_in_live_mode():
    settings = provider_settings(infobip_url="http://127.0.0.1:9", NOTIFICATION_SENDING_ENABLED="true",
                                 INFOBIP_WHATSAPP_SENDER="", SMTP_USER="pager")
    channels = {c["channel"]: c for c in provider_health_report(settings)["channels"]}
    assert channels["sms"] == {"channel": "sms", "provider": "infobip", "configured": True, "missing": [],
                               "mode": "live", "summary": "sending via infobip"}
    assert channels["whatsapp"]["missing"] == ["INFOBIP_WHATSAPP_SENDER"]
    assert "pages on this channel fail" in channels["whatsapp"]["summary"]
    # A user without a password is incomplete.
    assert channels["email"]["missing"] == ["SMTP_PASSWORD"]


def test_send_test_notification_queues_an_outbox_row(runner, session):
    result = runner.invoke(args=["pagerpal", "send-test-notification", "--channel", "sms", "--to", "+41793026727"])
    assert result.exit_code == 0, result.output
    assert "Queued test notification" in result.output and "safe mode" in result.output
    result = runner.invoke(args=["pagerpal", "send-test-notification", "--channel", "email",
                                 "--to", "oncall@example.test"])
    assert result.exit_code == 0, result.output
    rows = session.scalars(select(Notification).order_by(Notification.id)).all()
    assert [(n.channel, n.destination, n.status, n.incident_id) for n in rows] == [
        ("sms", "+41793026727", "pending", None), ("email", "oncall@example.test", "pending", None)]
    assert rows[0].subject.startswith("[TEST]") and "PagerPal" in rows[0].body
    assert rows[0].next_attempt_at is not None
    session.rollback()


def test_send_test_notification_refuses_a_bad_destination(runner, session):
    result = runner.invoke(args=["pagerpal", "send-test-notification", "--channel", "sms", "--to", "12345"])
    assert result.exit_code == 1 and "E.164" in result.output
    result = runner.invoke(args=["pagerpal", "send-test-notification", "--channel", "fax", "--to", "x"])
    assert result.exit_code != 0
    assert session.scalars(select(Notification)).all() == []
    session.rollback()
