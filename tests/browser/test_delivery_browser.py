"""Delivery health in a real browser: the dashboard's warning about an on-call person with no working
channel, and "Send test" on a contact method (queued in the outbox, its outcome shown)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from pagerpal_core.models import Notification
from pagerpal_core.services.schedules import create_entry, create_schedule
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from tests.browser.conftest import screenshot, signed_in_as
from tests.factories import make_user

# Browser flows do not depend on the backend; SQLite keeps them quick.
pytestmark = [pytest.mark.browser, pytest.mark.backends("sqlite")]


@pytest.fixture
def world(app):
    """An admin, and Sam on call now whose only channel (SMS) failed an hour ago."""
    with app.app_context():
        admin = make_user(db.session, role="admin", name="Ada Admin", email="admin@example.test",
                          contacts=[{"channel": "email", "destination": "ada@example.test"}])
        sam = make_user(db.session, name="Sam Broken", contacts=[{"channel": "sms", "destination": "+15550100202"}])
        schedule = create_schedule(db.session, name="Primary")
        now = utcnow()
        create_entry(db.session, schedule, user=sam, starts_at=now - timedelta(hours=1),
                     ends_at=now + timedelta(hours=8))
        method = sam.contact_methods[0]
        at = now - timedelta(hours=1)
        db.session.add(Notification(user_id=sam.id, contact_method_id=method.id, channel="sms",
                                    destination=method.destination, status="undeliverable", attempts=1,
                                    first_attempt_at=at, sent_at=at, created_at=at, updated_at=at,
                                    last_error="receipt: error EC_ABSENT_SUBSCRIBER"))
        db.session.commit()
        return {"admin_id": admin.id, "admin_method_id": admin.contact_methods[0].id, "sam_id": sam.id}


def test_dashboard_warns_about_an_on_call_person_with_no_working_channel(page, live_server, app, world):
    page.goto(live_server.url + signed_in_as(page, app, live_server.url, "admin@example.test"))
    warning = page.locator("#reach-warnings li")
    assert warning.count() == 1
    text = warning.inner_text()
    assert text.startswith("Sam Broken: SMS failing since ") and "no other channel" in text
    screenshot(page, "delivery-dashboard-reach-warning")
    warning.get_by_role("link", name="Contact methods").click()
    page.wait_for_url(f"**/users/{world['sam_id']}")
    assert "last: undeliverable" in page.locator("#contacts").inner_text()


def test_send_test_on_a_contact_method_queues_a_test_page(page, live_server, world, app):
    signed_in_as(page, app, live_server.url, "admin@example.test")
    page.goto(f"{live_server.url}/users/{world['admin_id']}")
    outcome = page.locator(f"#outcome-{world['admin_method_id']}")
    assert outcome.inner_text() == "last: never paged"
    page.click(f"#send-test-{world['admin_method_id']}")
    page.wait_for_url(f"**/users/{world['admin_id']}")
    assert "Test page queued to email" in page.content()
    assert page.locator(f"#outcome-{world['admin_method_id']}").inner_text().startswith("last: pending")
    screenshot(page, "delivery-send-test")
    with app.app_context():
        rows = db.session.scalars(select(Notification).where(Notification.kind == "test")).all()
        assert [(r.contact_method_id, r.channel, r.destination) for r in rows] == [
            (world["admin_method_id"], "email", "ada@example.test")]
