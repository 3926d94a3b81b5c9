"""The policy page's "now reaches" and its date-time picker, and /heartbeats, in a real browser."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pagerpal_core.services.escalation_policies import create_policy
from pagerpal_core.services.schedules import create_override, create_rotation, create_schedule
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from tests.browser.conftest import screenshot, signed_in_as
from tests.factories import make_user

# Browser flows do not depend on the backend; SQLite keeps them quick.
pytestmark = [pytest.mark.browser, pytest.mark.backends("sqlite")]


@pytest.fixture
def world(app):
    with app.app_context():
        admin = make_user(db.session, role="admin", name="Ada Admin", email="admin@example.test")
        admin.timezone = "Europe/Berlin"
        ada, ben = make_user(db.session, name="Ada Lovelace"), make_user(db.session, name="Ben Okafor")
        schedule = create_schedule(db.session, name="Primary", timezone="Europe/Berlin")
        create_rotation(db.session, schedule, start_date="2027-03-01", shift_unit="days", handoff_time="09:00",
                        participants=[ada, ben])
        now = utcnow()
        create_override(db.session, schedule, user=ben, starts_at=now - timedelta(hours=1),
                        ends_at=now + timedelta(hours=3), reason="swap")
        policy = create_policy(db.session, name="Databases", levels=[
            {"delay_minutes": 10, "targets": [{"type": "schedule", "id": schedule.id}]},
            {"delay_minutes": 15, "targets": [{"type": "user", "id": admin.id}]}])
        db.session.commit()
        return {"policy_id": policy.id}


def test_policy_page_shows_who_is_paged_now_and_at_a_chosen_time(page, live_server, app, world):
    signed_in_as(page, app, live_server.url, "admin@example.test")
    page.goto(f"{live_server.url}/escalation-policies/{world['policy_id']}")
    now_reaches = page.locator("#now-reaches")
    assert now_reaches.inner_text().startswith("Level 1 now reaches: Ben Okafor (override until ")
    screenshot(page, "policy-now-reaches")
    # The picker: 2027-03-28 08:30 in Berlin is just before the spring-forward day's 09:00 handoff.
    page.fill("#simulate-at", "2027-03-28T08:30")
    page.click("#simulate-form button[type=submit]")
    page.wait_for_url("**at=2027-03-28T08%3A30")
    level1 = page.locator("#simulated-level-1").inner_text()
    assert "Ada Lovelace" in level1 and "rotation turn until 09:00 CEST" in level1
    assert "Ada Admin (named on the level)" in page.locator("#simulated-level-2").inner_text()
    screenshot(page, "policy-simulation")


def test_heartbeats_page_creates_a_monitor_and_shows_its_url_once(page, live_server, app, world):
    page.goto(live_server.url + signed_in_as(page, app, live_server.url, "admin@example.test"))
    page.click("text=Heartbeats")
    page.wait_for_url("**/heartbeats")
    page.fill("#name", "nightly-backup")
    page.fill("#interval_seconds", "86400")
    page.select_option("#escalation_policy_id", label="Databases")
    page.click("#create-heartbeat button[type=submit]")
    assert "/api/v1/heartbeats/pph_" in page.locator("#ping-url").inner_text()
    screenshot(page, "heartbeat-created")
    page.click("text=Done — I saved the URL")
    row = page.locator("#heartbeats tbody tr").first
    assert "nightly-backup" in row.inner_text() and "waiting for first ping" in row.inner_text()
    screenshot(page, "heartbeats")
