"""Incident → outbox → worker cycle → fake Infobip / real SMTP server → delivery receipt.

The worker is the real one (`run_cycle` on a context built by `make_context`, so the senders
come from `build_senders(settings)`), and once as a real `pagerpal-worker --once` process.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from pagerpal_core.messages import render_page
from pagerpal_core.models import Incident, IncidentEvent, Notification
from pagerpal_core.settings import Settings
from pagerpal_core.timeutil import utcnow
from pagerpal_worker.loop import run_cycle
from pagerpal_worker.main import make_context
from tests.fakes.infobip import SMS_PATH, WHATSAPP_TEXT_PATH
from tests.fakes.smtp import FakeSMTP
from tests.providers.conftest import API_KEY, RECEIPT_TOKEN, SMTP_PASSWORD

BASE_URL = "https://pagerpal.example.test"
DESTINATIONS = {"sms": "+41793026727", "whatsapp": "+41793026728", "email": "oncall@example.test"}


def env_for(database_url, infobip, smtp, **extra) -> dict:
    values = {
        "DATABASE_URL": database_url, "PAGERPAL_BASE_URL": BASE_URL, "ENVIRONMENT": "test",
        "NOTIFICATION_SENDING_ENABLED": "true",
        "INFOBIP_BASE_URL": infobip.url, "INFOBIP_API_KEY": API_KEY, "INFOBIP_SMS_SENDER": "PagerPal",
        "INFOBIP_WHATSAPP_SENDER": "441134960000", "INFOBIP_RECEIPT_TOKEN": RECEIPT_TOKEN,
        "SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port), "SMTP_FROM": "pagerpal@example.test",
        "SMTP_USER": "pager", "SMTP_PASSWORD": SMTP_PASSWORD, "SMTP_SECURITY": smtp.security,
        "PROVIDER_TIMEOUT_SECONDS": "3", "NOTIFICATION_RETRY_BASE_SECONDS": "60",
    }
    values.update({k: str(v) for k, v in extra.items()})
    return values


def page_incident(session, channels=("sms", "whatsapp", "email")) -> tuple[int, dict[str, int]]:
    """An incident with one rendered outbox row per channel, committed (as paging writes them)."""
    incident = Incident(title="Database down", description="primary unreachable from app-1",
                        severity="critical", status="triggered")
    session.add(incident)
    session.flush()
    ids = {}
    for channel in channels:
        rendered = render_page(incident, channel, base_url=BASE_URL, source_name="grafana")
        row = Notification(incident_id=incident.id, channel=channel, destination=DESTINATIONS[channel],
                           subject=rendered.subject, body=rendered.body, status="pending", attempts=0,
                           next_attempt_at=utcnow())
        session.add(row)
        session.flush()
        ids[channel] = row.id
    session.commit()
    return incident.id, ids


def cycle(settings_env: dict):
    ctx = make_context(Settings.from_env(environ={}, overrides=settings_env))
    try:
        return run_cycle(ctx, utcnow())
    finally:
        ctx.close()
        ctx.session_factory.kw["bind"].dispose()


def rows(session, ids: dict[str, int]) -> dict[str, dict]:
    session.expire_all()
    out = {ch: {c.key: getattr(session.get(Notification, nid), c.key) for c in Notification.__table__.columns}
           for ch, nid in ids.items()}
    session.rollback()   # SQLite: do not hold the write lock between steps
    return out


def events(session, incident_id) -> list[IncidentEvent]:
    found = list(session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                 .order_by(IncidentEvent.id)))
    out = [(e.kind, e.message, e.detail) for e in found]
    session.rollback()
    return out


@pytest.fixture
def smtp_auth():
    with FakeSMTP(security="starttls", users={"pager": SMTP_PASSWORD}) as server:
        yield server


def test_incident_to_received_messages_and_receipt(database_url, session, infobip, smtp_auth, make_app,
                                                   monkeypatch):
    # The worker's SMTP sender trusts the fake server's self-signed certificate via SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_auth.cafile))
    incident_id, ids = page_incident(session)
    report = cycle(env_for(database_url, infobip, smtp_auth))
    assert report.processed.get("notification_retry", 0) >= 3, report

    sms = infobip.requests_to(SMS_PATH)[0].body["messages"][0]
    assert sms["destinations"] == [{"to": "41793026727"}]
    assert sms["text"].startswith("[CRITICAL] Database down (grafana)")
    assert sms["text"].endswith(f"{BASE_URL}/incidents/{incident_id}")
    wa = infobip.requests_to(WHATSAPP_TEXT_PATH)[0].body
    assert wa["to"] == "41793026728" and f"/incidents/{incident_id}" in wa["content"]["text"]
    [mail] = smtp_auth.wait_for_messages(1)
    assert mail.tls and mail.login == "pager" and mail.rcpt_tos == ["oncall@example.test"]
    assert mail.message["Subject"] == "[CRITICAL] Database down"
    assert f"{BASE_URL}/incidents/{incident_id}" in mail.text_part()
    assert f"{BASE_URL}/incidents/{incident_id}" in mail.html_part()

    state = rows(session, ids)
    assert {ch: r["status"] for ch, r in state.items()} == {"sms": "sent", "whatsapp": "sent", "email": "sent"}
    assert state["sms"]["provider_message_id"] in infobip.sent
    assert state["email"]["provider_message_id"] == mail.message["Message-ID"]
    assert [k for k, _, _ in events(session, incident_id)].count("notification_sent") == 3

    # Infobip reports the SMS delivered and the WhatsApp message undeliverable.
    client = make_app(INFOBIP_RECEIPT_TOKEN=RECEIPT_TOKEN).test_client()
    body = {"results": [infobip.delivery_report(state["sms"]["provider_message_id"]),
                        infobip.delivery_report(state["whatsapp"]["provider_message_id"], "UNDELIVERABLE")]}
    response = client.post("/api/v1/notifications/infobip/receipts", json=body,
                           headers={"X-Infobip-Receipt-Token": RECEIPT_TOKEN})
    assert response.status_code == 200 and response.get_json()["delivered"] == 1
    state = rows(session, ids)
    assert state["sms"]["status"] == "delivered"
    assert state["whatsapp"]["status"] == "undeliverable" and "EC_ABSENT_SUBSCRIBER" in state["whatsapp"]["last_error"]
    kinds = [k for k, _, _ in events(session, incident_id)]
    assert "notification_delivered" in kinds and "notification_undeliverable" in kinds


def test_safe_mode_calls_nobody_and_keeps_what_would_have_been_sent(database_url, session, infobip,
                                                                    smtp_server):
    incident_id, ids = page_incident(session)
    cycle(env_for(database_url, infobip, smtp_server, NOTIFICATION_SENDING_ENABLED="false",
                  SMTP_USER="", SMTP_PASSWORD=""))
    assert infobip.requests == [] and smtp_server.messages == []
    state = rows(session, ids)
    assert {r["status"] for r in state.values()} == {"suppressed"}
    assert state["sms"]["body"].startswith("[CRITICAL] Database down (grafana)")
    assert state["sms"]["body"].endswith(f"/incidents/{incident_id}")
    suppressed = [e for e in events(session, incident_id) if e[0] == "notification_suppressed"]
    assert len(suppressed) == 3


def test_provider_trouble_through_the_worker(database_url, session, infobip, smtp_server):
    infobip.plan(500, path=SMS_PATH, count=1)
    infobip.plan(401, path=WHATSAPP_TEXT_PATH, count=1)
    smtp_server.reject_rcpt("550 5.1.1 No such user")
    incident_id, ids = page_incident(session)
    cycle(env_for(database_url, infobip, smtp_server, SMTP_USER="", SMTP_PASSWORD="", SMTP_SECURITY="none"))
    state = rows(session, ids)
    assert state["sms"]["status"] == "pending" and "500" in state["sms"]["last_error"]
    assert state["whatsapp"]["status"] == "exhausted" and "INFOBIP_API_KEY" in state["whatsapp"]["last_error"]
    assert state["email"]["status"] == "exhausted" and "550" in state["email"]["last_error"]


def test_incomplete_settings_fail_pages_with_a_clear_error(database_url, session, infobip, smtp_server):
    incident_id, ids = page_incident(session, channels=("sms",))
    cycle(env_for(database_url, infobip, smtp_server, INFOBIP_API_KEY="", SMTP_USER="", SMTP_PASSWORD=""))
    assert infobip.requests == []
    state = rows(session, ids)
    assert state["sms"]["status"] == "exhausted"
    assert state["sms"]["last_error"] == "not configured: missing INFOBIP_API_KEY"


def test_secrets_never_reach_logs_or_stored_errors(database_url, session, infobip, smtp_auth, caplog,
                                                   monkeypatch):
    """Providers echo the secrets back in their errors; nothing stored or logged may keep them."""
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_auth.cafile))
    caplog.set_level(logging.DEBUG)
    infobip.plan(400, path=SMS_PATH, text=f"Invalid key App {API_KEY} for {RECEIPT_TOKEN}")
    infobip.plan(503, path=WHATSAPP_TEXT_PATH, text=f"upstream said apikey={API_KEY}")
    incident_id, ids = page_incident(session)
    wrong_password = env_for(database_url, infobip, smtp_auth)
    smtp_auth.users["pager"] = "a-different-password"   # the server now refuses our password
    cycle(wrong_password)
    state = rows(session, ids)
    assert state["sms"]["status"] == "exhausted" and "BAD_REQUEST" in state["sms"]["last_error"]
    assert state["whatsapp"]["status"] == "pending"
    assert state["email"]["status"] == "exhausted" and "refused the login" in state["email"]["last_error"]
    stored = json.dumps([state, events(session, incident_id)], default=str)
    logged = "\n".join(r.getMessage() + json.dumps(getattr(r, "fields", None), default=str)
                       for r in caplog.records)
    for secret in (API_KEY, SMTP_PASSWORD, RECEIPT_TOKEN):
        assert secret not in stored
        assert secret not in logged
    assert "[REDACTED]" in state["sms"]["last_error"]


@pytest.mark.slow
def test_worker_process_sends_a_page(database_url, session, infobip, smtp_server, tmp_path):
    """`pagerpal-worker --once` as a real process, configured only through its environment."""
    incident_id, ids = page_incident(session, channels=("sms", "email"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFOBIP_", "SMTP_", "NOTIFICATION_"))}
    env.update(env_for(database_url, infobip, smtp_server, SMTP_USER="", SMTP_PASSWORD="",
                       PAGERPAL_INSTANCE_PATH=str(tmp_path)))
    proc = subprocess.run([sys.executable, "-m", "pagerpal_worker.main", "--once"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert len(infobip.requests_to(SMS_PATH)) == 1
    assert smtp_server.wait_for_messages(1)[0].message["Subject"] == "[CRITICAL] Database down"
    assert {r["status"] for r in rows(session, ids).values()} == {"sent"}
    assert API_KEY not in proc.stdout + proc.stderr
