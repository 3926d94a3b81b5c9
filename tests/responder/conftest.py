"""Acting from a page, end to end: the web app, the real worker, and the local Infobip/SMTP servers.

`responder` builds the whole loop on the test database: Ada (SMS, WhatsApp, email) is level 1
of a two-level policy, Ben (SMS) level 2, ten minutes apart; an alert source whose key the
test posts alerts with. The worker is the real one (`run_cycle` on `make_context`), sending
to a fake Infobip and a real local SMTP server; the clock it runs with is injected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from pagerpal_core.models import ActionLink, InboundMessage, Incident, IncidentEvent, Notification
from pagerpal_core.services.alert_sources import create_alert_source
from pagerpal_core.services.escalation_policies import create_policy
from pagerpal_core.settings import Settings
from pagerpal_core.timeutil import utcnow
from pagerpal_worker.loop import run_cycle
from pagerpal_worker.main import make_context
from tests.factories import make_user
from tests.fakes.infobip import SMS_PATH, WHATSAPP_TEXT_PATH, FakeInfobip
from tests.fakes.smtp import FakeSMTP

BASE_URL = "https://pagerpal.example.test"
SECRET = "test-secret-key-that-is-long-enough-0123456789"   # what tests.conftest.app_overrides sets
API_KEY = "ib-responder-test-key-4f2a9e"
INBOUND_TOKEN = "inbound-test-token-8d7c6b5a4f3e"
ADA_SMS, ADA_WHATSAPP, ADA_EMAIL = "+41793026727", "+41793026728", "ada@example.test"
BEN_SMS = "+41793026730"
LINK_RE = re.compile(re.escape(BASE_URL) + r"/a/([A-Za-z0-9_-]{16,64})(\?do=(\w+))?")
HINT_RE = re.compile(r"Reply (\d{3,6}) ACK / \1 RES$")
FORM_TOKEN_RE = re.compile(r'name="form_token" value="([0-9a-f]+)"')


@dataclass
class Responder:
    """The routed world, the web client, and a worker that runs cycles on demand."""

    app: object
    client: object
    session: object
    ctx: object
    infobip: FakeInfobip
    smtp: FakeSMTP
    ada: object
    ben: object
    source_key: str
    cycles: list = field(default_factory=list)

    # --- driving ------------------------------------------------------------------------
    def alert(self, title: str = "Disk full on db-1", external_id: str = "disk-db-1") -> int:
        """POST a generic alert as the monitoring system would; returns the incident id."""
        response = self.client.post("/api/v1/alerts", headers={"X-API-Key": self.source_key},
                                    json={"title": title, "external_id": external_id, "severity": "critical",
                                          "description": "/var at 99%"})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["incident_id"]

    def cycle(self, at: datetime | None = None):
        """One worker cycle at `at` (default: now); returns its report."""
        report = run_cycle(self.ctx, at or utcnow())
        assert not report.errors, report.errors
        self.cycles.append(report)
        return report

    def later(self, minutes: float) -> datetime:
        return utcnow() + timedelta(minutes=minutes)

    # --- what was sent ------------------------------------------------------------------------
    def sms_to(self, number: str) -> list[str]:
        """Texts the fake Infobip was asked to send to `number` by SMS, in order."""
        digits = number.lstrip("+")
        return [m["text"] for r in self.infobip.requests_to(SMS_PATH) for m in r.body["messages"]
                if {"to": digits} in m["destinations"]]

    def whatsapp_to(self, number: str) -> list[str]:
        digits = number.lstrip("+")
        return [r.body["content"]["text"] for r in self.infobip.requests_to(WHATSAPP_TEXT_PATH)
                if r.body.get("to") == digits]

    def emails_to(self, address: str) -> list:
        return [m for m in self.smtp.messages if address in m.rcpt_tos]

    # --- database reads (short transactions: SQLite's write lock is never held) -------------
    def read(self, fn):
        self.session.rollback()
        self.session.expire_all()
        try:
            result = fn(self.session)
        except Exception:
            self.session.rollback()
            raise
        # commit, not rollback: a rollback expires what was read, and touching an expired
        # object later would open a transaction that holds SQLite's write lock.
        self.session.commit()
        return result

    def incident(self, incident_id: int) -> Incident:
        return self.read(lambda s: s.get(Incident, incident_id))

    def events(self, incident_id: int) -> list[IncidentEvent]:
        return self.read(lambda s: list(s.scalars(select(IncidentEvent).where(
            IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.id))))

    def state(self) -> dict:
        """Everything acting on a page could change, to compare before and after."""
        def snapshot(s):
            incidents = [(i.id, i.status, i.assignee_id, i.acknowledged_by_id, i.resolved_by_id, i.current_level,
                          i.next_escalation_at) for i in s.scalars(select(Incident).order_by(Incident.id))]
            links = [(link.id, link.used_at, link.used_action) for link in s.scalars(
                select(ActionLink).order_by(ActionLink.id))]
            notifications = [(n.id, n.status, n.destination) for n in s.scalars(
                select(Notification).order_by(Notification.id))]
            return {"incidents": incidents, "links": links, "notifications": notifications,
                    "events": s.scalar(select(func.count()).select_from(IncidentEvent)),
                    "inbound": s.scalar(select(func.count()).select_from(InboundMessage))}
        return self.read(snapshot)


def link_token(text: str) -> str:
    """The action-link token in a page's text."""
    match = LINK_RE.search(text)
    assert match, f"no action link in {text!r}"
    return match.group(1)


def reply_code(text: str) -> str:
    match = HINT_RE.search(text)
    assert match, f"no reply hint at the end of {text!r}"
    return match.group(1)


def form_token(html: str) -> str:
    match = FORM_TOKEN_RE.search(html)
    assert match, "no form token in the page"
    return match.group(1)


def worker_settings(database_url: str, infobip: FakeInfobip, smtp: FakeSMTP, **extra) -> Settings:
    values = {
        "DATABASE_URL": database_url, "SECRET_KEY": SECRET, "ENVIRONMENT": "test", "PAGERPAL_BASE_URL": BASE_URL,
        "NOTIFICATION_SENDING_ENABLED": "true", "INFOBIP_BASE_URL": infobip.url, "INFOBIP_API_KEY": API_KEY,
        "INFOBIP_SMS_SENDER": "+41793026000", "INFOBIP_WHATSAPP_SENDER": "41793026001",
        "SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port), "SMTP_FROM": "pagerpal@example.test",
        "SMTP_SECURITY": "none", "PROVIDER_TIMEOUT_SECONDS": "3", "NOTIFICATION_RETRY_BASE_SECONDS": "60",
    }
    values.update({k: str(v) for k, v in extra.items()})
    return Settings.from_env(environ={}, overrides=values)


@pytest.fixture
def fake_infobip():
    with FakeInfobip(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def fake_smtp():
    with FakeSMTP() as fake:
        yield fake


@pytest.fixture
def responder(make_app, database_url, session, fake_infobip, fake_smtp):
    app = make_app(PAGERPAL_BASE_URL=BASE_URL, INFOBIP_INBOUND_TOKEN=INBOUND_TOKEN)
    ada = make_user(session, name="Ada Lovelace", contacts=[
        {"channel": "sms", "destination": ADA_SMS}, {"channel": "whatsapp", "destination": ADA_WHATSAPP},
        {"channel": "email", "destination": ADA_EMAIL}])
    ben = make_user(session, name="Ben Okri", contacts=[{"channel": "sms", "destination": BEN_SMS}])
    policy = create_policy(session, name="db", levels=[
        {"delay_minutes": 10, "targets": [{"type": "user", "id": ada.id}]},
        {"delay_minutes": 10, "targets": [{"type": "user", "id": ben.id}]}])
    issued = create_alert_source(session, name="grafana-prod", policy_id=policy.id, now=utcnow())
    session.commit()
    # Detached, so reading r.ada.id later never opens a transaction on the test session.
    session.expunge(ada)
    session.expunge(ben)
    ctx = make_context(worker_settings(database_url, fake_infobip, fake_smtp))
    world = Responder(app=app, client=app.test_client(), session=session, ctx=ctx, infobip=fake_infobip,
                      smtp=fake_smtp, ada=ada, ben=ben, source_key=issued.key)
    yield world
    ctx.close()
    ctx.session_factory.kw["bind"].dispose()
