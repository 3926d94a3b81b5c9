"""Delivery test helpers: the worker fixtures, a fake SMTP server, people with contact methods."""

from __future__ import annotations

import pytest

from pagerpal_core.services.paging import page_users
from pagerpal_core.timeutil import utcnow
from tests.factories import make_user
from tests.fakes.smtp import FakeSMTP
from tests.worker.conftest import fake_infobip, make_ctx, make_incident  # noqa: F401  (fixtures)

BASE_URL = "https://pagerpal.example.test"


@pytest.fixture
def fake_smtp():
    with FakeSMTP() as smtp:
        yield smtp


def smtp_env(smtp: FakeSMTP) -> dict:
    """Worker settings that send email to `smtp`."""
    return {"SMTP_HOST": smtp.host, "SMTP_PORT": smtp.port, "SMTP_FROM": "pager@acme.test",
            "SMTP_SECURITY": "none"}


def make_responder(session, *, phone="+15550100101", email="alice@acme.test", whatsapp=None):
    """A responder with an SMS and an email contact method (and WhatsApp when given)."""
    contacts = [{"channel": "sms", "destination": phone}, {"channel": "email", "destination": email}]
    if whatsapp:
        contacts.insert(1, {"channel": "whatsapp", "destination": whatsapp})
    return make_user(session, email=email, contacts=contacts)


def page(session, incident, user, *, now=None, level=1):
    """Page `user` for `incident` at `now` (committed); returns the new notification ids."""
    [result] = page_users(session, incident, [user], level=level, now=now or utcnow(), base_url=BASE_URL)
    session.commit()
    return result.notification_ids
