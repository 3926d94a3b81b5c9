"""An admin's first hour in real headless Chromium (desktop 1280 px and phone 375 px): the
getting-started checklist ticking itself, the On call now card, the policy page's "now
reaches", times in a non-UTC reader's zone, a rotation built in a chosen order and edited in
place, a gap warning, a password change ending another session, and the dashboard's
conditional refresh. Screenshots go to test-artifacts/screenshots/.

The flows that must also fit a phone run at 375 px only: the server sends the same HTML at
every width, and the phone is the layout their assertions can fail on (nothing wider than the
screen, every control reachable). The same pages at desktop width are checked in
test_ui_browser.py::test_screenshots_of_the_configuration_pages (On call card, "now reaches",
the profile link) and test_assurance_browser.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from pagerpal_core.models import Incident, User
from pagerpal_core.services import schedules
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from tests.browser.conftest import screenshot, signed_in_as
from tests.browser.test_ui_browser import no_dialogs
from tests.factories import PASSWORD, make_user
from tests.web.test_ui_pages import build_world

# Browser flows do not depend on the backend; SQLite keeps them quick.
pytestmark = [pytest.mark.browser, pytest.mark.backends("sqlite")]

NEW_PASSWORD = "first-hour-new-password"


def fits(page, width: int = 375) -> bool:
    """Nothing on the page is wider than the phone (no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth") <= width


def test_checklist_ticks_itself_as_the_admin_sets_up(page, live_server):
    url = live_server.url
    page.goto(f"{url}/login")
    page.fill("#name", "Ada Admin")
    page.fill("#email", "ada@example.test")
    page.fill("#password", "a-long-password")
    page.fill("#confirm", "a-long-password")
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    checklist = page.locator("#getting-started")
    assert checklist.is_visible() and "0 of 5 done" in checklist.inner_text()
    assert page.locator("#step-people").get_attribute("data-done") == "no"
    screenshot(page, "first-hour-checklist-empty")

    page.locator("#step-people a").click()
    page.wait_for_url("**/users")
    page.fill("#name", "Carol Chen")
    page.fill("#email", "carol@example.test")
    page.select_option("#channel", "sms")
    page.fill("#destination", "+14155550103")
    page.click("#create-user button[type=submit]")
    page.wait_for_selector(".flash-success")
    page.goto(f"{url}/schedules")
    page.fill("#name", "Primary")
    page.click("form[action='/schedules'] button[type=submit]")
    page.wait_for_selector(".flash-success")

    page.goto(f"{url}/dashboard")
    assert page.locator("#step-people").get_attribute("data-done") == "yes"
    assert page.locator("#step-schedule").get_attribute("data-done") == "yes"
    assert page.locator("#step-policy").get_attribute("data-done") == "no"
    assert "2 of 5 done" in page.locator("#getting-started").inner_text()
    screenshot(page, "first-hour-checklist-two-done")


def test_on_call_card_and_policy_now_reaches(phone_page, live_server, app):
    world = build_world(app)  # Pat Paged is on call in "Primary" (an entry); a policy pages it
    tab = phone_page
    signed_in_as(tab, app, live_server.url, world.admin_email)
    tab.goto(f"{live_server.url}/dashboard")
    card = tab.locator(f"#on-call-{world.schedule_id}")
    card.scroll_into_view_if_needed()
    assert card.is_visible()
    text = card.inner_text()
    assert "Primary" in text and "Pat Paged" in text and "until" in text and "sms" in text
    assert fits(tab)
    screenshot(tab, "first-hour-on-call-card-phone")

    tab.goto(f"{live_server.url}/escalation-policies/{world.policy_id}")
    assert tab.locator("#now-reaches").inner_text().startswith("Level 1 now reaches: Pat Paged")
    screenshot(tab, "first-hour-policy-now-reaches-phone")


def test_times_in_a_non_utc_readers_zone(phone_page, live_server, app):
    world = build_world(app)
    opened = datetime(2027, 1, 15, 8, 30, tzinfo=UTC)
    with app.app_context():
        db.session.get(Incident, world.incident_id).created_at = opened
        viewer = db.session.scalar(db.select(User).where(User.email == world.viewer_email))
        viewer.timezone = "Asia/Tokyo"
        db.session.commit()
    tab = phone_page
    signed_in_as(tab, app, live_server.url, world.viewer_email)
    tab.goto(f"{live_server.url}/incidents/{world.incident_id}")
    opened_at = tab.locator("time[datetime='2027-01-15T08:30:00Z']").first
    assert opened_at.inner_text() == "2027-01-15 17:30 JST"
    assert opened_at.get_attribute("title") == "2027-01-15 08:30:00 UTC"  # UTC on hover
    screenshot(tab, "first-hour-local-times-phone")
    tab.goto(f"{live_server.url}/schedules/{world.schedule_id}")
    assert tab.locator("#timeline-zone").inner_text() == "days in Europe/Berlin"
    assert fits(tab)


def _schedule_with_people(app):
    with app.app_context():
        s = db.session
        admin = make_user(s, role="admin", name="Ada Admin")
        people = {n: make_user(s, name=n, contacts=[{"channel": "email", "destination": f"{n.lower()}@example.test"}])
                  for n in ("Alice", "Bob", "Carol")}
        schedule = schedules.create_schedule(s, name="Follow the order", timezone="UTC", now=utcnow())
        s.commit()
        return admin.email, schedule.id, {n: u.id for n, u in people.items()}


def test_rotation_built_in_a_chosen_order_then_edited(phone_page, live_server, app):
    admin_email, schedule_id, people = _schedule_with_people(app)
    tab = phone_page
    dialogs = no_dialogs(tab)
    signed_in_as(tab, app, live_server.url, admin_email)
    tab.goto(f"{live_server.url}/schedules/{schedule_id}")
    # Nobody yet: the gap warning says so.
    assert tab.locator("#gap-warning").is_visible()
    assert "Nobody is on call" in tab.locator("#gap-warning").inner_text()
    screenshot(tab, "first-hour-gap-warning-phone")

    today = utcnow().date()
    tab.fill("#rotation-name", "Daily")
    tab.fill("#rotation-shift_length", "1")
    tab.select_option("#rotation-shift_unit", "days")
    tab.fill("#rotation-handoff_time", "00:00")
    tab.fill("#rotation-start_date", today.isoformat())
    for slot, name in enumerate(("Carol", "Alice", "Bob")):
        tab.select_option(f"#rotation-participants-{slot}", str(people[name]))
    tab.click("#rotation-form button[type=submit]")
    tab.wait_for_selector(".flash-success")
    order = tab.locator("ol.turn-order li .turn-name").all_inner_texts()
    assert order == ["Carol", "Alice", "Bob"]
    # Today's turn is the first in the chosen order; the gap is gone.
    assert tab.locator("#on-call-now").inner_text().startswith("Carol")
    assert tab.locator("#gap-warning").count() == 0
    screenshot(tab, "first-hour-rotation-order-phone")

    tab.get_by_role("button", name="Move Bob up").click()
    tab.wait_for_selector(".flash-success")
    assert tab.locator("ol.turn-order li .turn-name").all_inner_texts() == ["Carol", "Bob", "Alice"]

    tab.locator("details.edit-rotation summary").click()
    rotation_form = tab.locator("form[id^='rotation-edit-']")
    rotation_form.locator("input[name$='-name']").fill("Every two days")
    rotation_form.locator("input[name$='-shift_length']").fill("2")
    rotation_form.locator("button[type=submit]").click()
    tab.wait_for_selector(".flash-success")
    assert "Rotation saved." in tab.locator(".flash-success").inner_text()
    assert tab.locator(".rotation h3").inner_text() == "Every two days"
    assert "Every 2 days" in tab.locator(".rotation p.muted").first.inner_text()
    assert tab.locator("ol.turn-order li .turn-name").all_inner_texts() == ["Carol", "Bob", "Alice"]
    assert fits(tab)
    screenshot(tab, "first-hour-rotation-edited-phone")
    assert dialogs == []


def test_profile_password_change_ends_the_other_session(browser, phone_page, live_server, app):
    with app.app_context():
        make_user(db.session, role="admin", name="Ada Admin")
        make_user(db.session, role="viewer", email="vic@example.test", name="Vic Viewer",
                  contacts=[{"channel": "sms", "destination": "+14155550123"}])
        db.session.commit()
    tab = phone_page
    other_context = browser.new_context(viewport={"width": 1280, "height": 900})
    other = other_context.new_page()
    try:
        signed_in_as(other, app, live_server.url, "vic@example.test")
        signed_in_as(tab, app, live_server.url, "vic@example.test")
        tab.goto(f"{live_server.url}/profile")
        assert tab.get_by_role("button", name="Send test").is_visible()
        assert fits(tab)
        screenshot(tab, "first-hour-profile-phone")

        tab.fill("#password-current_password", "not-my-password")
        tab.fill("#password-new_password", NEW_PASSWORD)
        tab.fill("#password-confirm", NEW_PASSWORD)
        tab.click("#password-form button[type=submit]")
        assert "is not your current password" in tab.locator("#password-form").inner_text()

        tab.fill("#password-current_password", PASSWORD)
        tab.fill("#password-new_password", NEW_PASSWORD)
        tab.fill("#password-confirm", NEW_PASSWORD)
        tab.click("#password-form button[type=submit]")
        tab.wait_for_selector(".flash-success")
        assert "other sessions were signed out" in tab.locator(".flash-success").inner_text()
        screenshot(tab, "first-hour-password-changed-phone")
        tab.goto(f"{live_server.url}/dashboard")
        assert re.search(r"/dashboard$", tab.url)  # this browser stays signed in

        other.goto(f"{live_server.url}/dashboard")
        assert "/login" in other.url  # the other session ended
    finally:
        other_context.close()


def test_dashboard_refresh_is_conditional(page, live_server, app):
    """The browser's own refresh revalidates with If-None-Match; unchanged, the server answers 304."""
    world = build_world(app)
    signed_in_as(page, app, live_server.url, world.viewer_email)
    page.goto(f"{live_server.url}/dashboard")
    etag = page.evaluate("fetch(location.href).then(r => r.headers.get('ETag'))")
    assert etag
    status = page.evaluate("(etag) => fetch(location.href, {headers: {'If-None-Match': etag}, cache: 'no-store'})"
                           ".then(r => r.status)", etag)
    assert status == 304
    # An acknowledgement changes the page: the same ETag now gets the whole page.
    with app.app_context():
        from pagerpal_core.services.incidents import acknowledge_incident
        acknowledge_incident(db.session, db.session.get(Incident, world.incident_id), actor="test",
                             now=utcnow() + timedelta(seconds=1))
        db.session.commit()
    status = page.evaluate("(etag) => fetch(location.href, {headers: {'If-None-Match': etag}, cache: 'no-store'})"
                           ".then(r => r.status)", etag)
    assert status == 200
