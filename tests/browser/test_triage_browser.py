"""Triage on a phone (375x812) in real headless Chromium: from the dashboard one tap acknowledges
a triggered incident; the menu folds into one line; the incident page shows its actions first.
Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import re

import pytest

from pagerpal_core.models import Incident
from pagerpal_web.extensions import db
from tests.browser.conftest import screenshot, signed_in_as
from tests.browser.test_ui_browser import no_dialogs

# Browser flows do not depend on the backend; SQLite keeps them quick.
pytestmark = [pytest.mark.browser, pytest.mark.backends("sqlite")]


def status_of(app, incident_id: int) -> tuple:
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        return incident.status, incident.acknowledged_by_id


def test_one_tap_acknowledge_from_the_dashboard_on_a_phone(phone_page, live_server, app):
    from tests.web.test_ui_pages import build_world

    world = build_world(app)
    page = phone_page
    dialogs = no_dialogs(page)
    signed_in_as(page, app, live_server.url, world.responder_email)
    page.goto(f"{live_server.url}/dashboard")
    # The top bar is one line: brand and a Menu toggle; the links are folded away until tapped.
    assert page.locator("#nav-menu summary").is_visible()
    assert not page.get_by_role("link", name="Schedules").is_visible()
    assert page.locator(".topbar").bounding_box()["height"] < 64
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "triage-dashboard-phone")

    page.locator("#nav-menu summary").click()
    assert page.get_by_role("link", name="Schedules").is_visible()
    screenshot(page, "triage-menu-open-phone")
    page.locator("#nav-menu summary").click()

    button = page.locator(f"#quick-ack-{world.incident_id} button")
    assert button.is_visible()
    box = button.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375  # reachable without scrolling sideways
    button.tap()
    page.wait_for_selector(".flash-success")
    assert re.search(r"/dashboard", page.url)
    assert f"Acknowledged #{world.incident_id}." in page.locator(".flash-success").inner_text()
    assert page.locator(f"#quick-ack-{world.incident_id}").count() == 0
    assert status_of(app, world.incident_id) == ("acknowledged", world.responder_id)
    assert dialogs == []
    screenshot(page, "triage-dashboard-acknowledged-phone")


def test_incident_page_on_a_phone_shows_actions_before_details(phone_page, live_server, app):
    from tests.web.test_ui_pages import build_world

    world = build_world(app)
    page = phone_page
    signed_in_as(page, app, live_server.url, world.responder_email)
    page.goto(f"{live_server.url}/incidents/{world.incident_id}")
    actions = page.locator("#actions").bounding_box()
    facts = page.locator("dl.facts").bounding_box()
    assert actions["y"] < facts["y"]
    # The Acknowledge button is on the first screen.
    assert page.get_by_role("button", name="Acknowledge").bounding_box()["y"] < 812
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "triage-incident-phone")
    page.select_option("#snooze-acting_as", str(world.responder_id))
    page.locator("#snooze-30").tap()
    page.wait_for_selector("#paging-state")
    assert "Snoozed until" in page.locator("#paging-state").inner_text()
    assert "Rita Responder" in page.locator("#paging-state").inner_text()
    screenshot(page, "triage-incident-snoozed-phone")
