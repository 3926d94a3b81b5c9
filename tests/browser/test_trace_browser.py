"""The incident page's "Why was this paged?" section and the /maintenance page, in a real browser."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pagerpal_core.services.escalation_policies import create_policy
from pagerpal_core.services.schedules import create_override, create_rotation, create_schedule
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from pagerpal_worker.loop import run_cycle
from tests.browser.conftest import ARTIFACTS, screenshot, signed_in_as
from tests.core.routing_setup import make_source, open_incident
from tests.factories import make_user
from tests.worker.conftest import fake_infobip, make_ctx  # noqa: F401  (fixtures)

# Browser flows do not depend on the backend; SQLite keeps them quick.
pytestmark = [pytest.mark.browser, pytest.mark.backends("sqlite")]


def test_trace_section_names_the_override_and_each_attempt(page, live_server, app, make_ctx,  # noqa: F811
                                                           fake_infobip):  # noqa: F811
    now = utcnow()
    with app.app_context():
        make_user(db.session, role="admin", name="Ada Admin", email="admin@example.test")
        ada = make_user(db.session, name="Ada Lovelace", contacts=[{"channel": "sms", "destination": "+14155550101"}])
        ben = make_user(db.session, name="Ben Okafor", contacts=[{"channel": "sms", "destination": "+14155550102"}])
        cy = make_user(db.session, name="Cy Jones", contacts=[{"channel": "email", "destination": "cy@example.test"}])
        schedule = create_schedule(db.session, name="Primary", timezone="Europe/Berlin")
        create_rotation(db.session, schedule, start_date="2026-01-01", shift_unit="weeks", handoff_time="09:00",
                        participants=[ada])
        create_override(db.session, schedule, user=ben, starts_at=now - timedelta(hours=1),
                        ends_at=now + timedelta(hours=3), reason="swap")
        policy = create_policy(db.session, name="Databases", levels=[
            {"delay_minutes": 10, "targets": [{"type": "schedule", "id": schedule.id}]},
            {"delay_minutes": 15, "targets": [{"type": "user", "id": cy.id}]}])
        source = make_source(db.session, policy, name="grafana-prod")
        incident = open_incident(db.session, source, now=now, title="Replica lag on db-2")
        db.session.commit()
        incident_id = incident.id

    ctx = make_ctx(fake_infobip.url)
    fake_infobip.fail_next(500)                          # Ben's first SMS attempt fails, the retry works
    run_cycle(ctx, now + timedelta(seconds=1))
    run_cycle(ctx, now + timedelta(seconds=30))
    run_cycle(ctx, now + timedelta(minutes=10, seconds=5))  # level 2: Cy by email, which is not configured

    signed_in_as(page, app, live_server.url, "admin@example.test")
    page.goto(f"{live_server.url}/incidents/{incident_id}")
    trace = page.locator("#trace")
    text = trace.inner_text()
    assert text.startswith("Why was this paged?")
    assert "Paged Ben Okafor, Cy Jones." in text
    assert "Ben Okafor — override until" in text and "schedule Primary" in text
    assert "SMS to" in text and "sent; 2 attempts; provider accepted it" in text
    assert "Cy Jones — named on the level" in text and "SMTP_HOST" in text
    assert "Still paging: level 2 was paged last" in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    trace.screenshot(path=str(ARTIFACTS / "incident-trace-section.png"))
    screenshot(page, "incident-trace")


def test_maintenance_page_creates_and_ends_a_window(page, live_server, app):
    with app.app_context():
        make_user(db.session, role="admin", name="Ada Admin", email="admin@example.test")
        make_source(db.session, None, name="grafana-prod")
        db.session.commit()
    signed_in_as(page, app, live_server.url, "admin@example.test")
    page.goto(f"{live_server.url}/maintenance")
    page.fill("#reason", "Postgres upgrade")
    page.select_option("#alert_source_ids", label="grafana-prod")
    page.click("#create-maintenance button[type=submit]")
    row = page.locator("#maintenance-windows tbody tr").first
    assert "Postgres upgrade" in row.inner_text() and "active" in row.inner_text()
    screenshot(page, "maintenance-window-active")
    page.goto(f"{live_server.url}/dashboard")
    assert "In maintenance until" in page.locator("#maintenance-active").inner_text()
    page.goto(f"{live_server.url}/maintenance")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=End now")
    page.wait_for_load_state()
    assert "over" in page.locator("#maintenance-windows tbody tr").first.inner_text()
