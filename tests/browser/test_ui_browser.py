"""The main UI flows in real headless Chromium, with full-page screenshots of every main page
under test-artifacts/screenshots/ (desktop, and the incident page at 375 px)."""

from __future__ import annotations

import re

import pytest
import requests

from pagerpal_web.ui.dashboard import REFRESH_SECONDS
from tests.browser.conftest import screenshot, signed_in_as
from tests.factories import PASSWORD
from tests.web.test_ui_pages import SCRIPT_TITLE, build_world

# Browser flows do not depend on the backend; SQLite keeps them quick.
pytestmark = [pytest.mark.browser, pytest.mark.backends("sqlite")]


def sign_in(page, url: str, email: str, password: str = PASSWORD):
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/(dashboard|mine)$"))  # responders land on /mine


def send_alert(url: str, key: str, **body) -> dict:
    response = requests.post(f"{url}/api/v1/alerts", json=body, headers={"X-API-Key": key}, timeout=10)
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


def no_dialogs(page) -> list:
    """Record every JavaScript dialog; an injected alert() would land here."""
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return dialogs


def test_admin_sets_up_a_source_gets_paged_and_sees_it_live(page, live_server):
    """Bootstrap → alert source (key once) → alert over HTTP → dashboard refreshes by itself."""
    url = live_server.url
    dialogs = no_dialogs(page)
    page.goto(f"{url}/login")
    page.fill("#name", "Ada Admin")
    page.fill("#email", "ada@example.test")
    page.fill("#password", "a-long-password")
    page.fill("#confirm", "a-long-password")
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")

    page.goto(f"{url}/alert-sources")
    page.fill("#name", "grafana-prod")
    page.select_option("#kind", "generic")
    page.click("#create-source button[type=submit]")
    key = page.locator("#full-key").inner_text().strip()
    assert re.fullmatch(r"ppk_[A-Za-z0-9_-]{40,}", key)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    page.get_by_role("button", name="Copy key").click()
    page.wait_for_selector("button[data-copy='#full-key']:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == key
    assert key in page.locator("#example-curl").inner_text()
    screenshot(page, "alert-source-key-once")
    page.get_by_role("link", name="Done — I saved the key").click()
    assert key not in page.content()
    page.reload()
    assert key not in page.content() and f"ppk_…{key[-4:]}" in page.content()
    page.goto(f"{url}/alert-sources")
    assert key not in page.content()
    screenshot(page, "alert-sources")

    # The dashboard is open and scrolled when the alert arrives; it appears without a reload.
    page.clock.install()  # the refresh timer, fast-forwarded instead of waited for
    page.goto(f"{url}/dashboard")
    assert page.locator("#open-incidents").count() == 0
    page.evaluate("window.__marker = 'same document'")
    send_alert(url, key, title=SCRIPT_TITLE, external_id="disk-db-1", severity="critical",
               description="Disk /var is 99% full")
    page.clock.fast_forward(REFRESH_SECONDS * 1000)
    page.wait_for_selector("#open-incidents td.title", timeout=15_000)
    assert page.evaluate("window.__marker") == "same document", "the page reloaded instead of refreshing"
    title_cell = page.locator("#open-incidents td.title a").first
    assert SCRIPT_TITLE in title_cell.inner_text()
    assert page.locator("#count-triggered").inner_text() == "1"
    assert page.locator("#warnings").inner_text().count("safe mode") == 1
    screenshot(page, "dashboard")

    page.goto(f"{url}/incidents")
    screenshot(page, "incidents")
    title_cell = page.locator("td.title a").first
    title_cell.click()
    page.wait_for_url(re.compile(r".*/incidents/\d+$"))
    assert SCRIPT_TITLE in page.locator("#incident-title-text").inner_text()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert dialogs == [], "a script from alert text ran"

    page.goto(f"{url}/settings")
    assert page.locator("#providers").is_visible()
    screenshot(page, "settings")


def test_dashboard_refresh_keeps_scroll_position(page, live_server, app):
    world = build_world(app)
    signed_in_as(page, app, live_server.url, world.admin_email)
    page.set_viewport_size({"width": 1280, "height": 400})
    for n in range(30):
        send_alert(live_server.url, world.full_key, title=f"Filler alert {n}", external_id=f"filler-{n}")
    page.clock.install()  # the page's own timer, fast-forwarded instead of waited for
    page.goto(f"{live_server.url}/dashboard")
    page.evaluate("window.scrollTo(0, 600)")
    before = page.evaluate("window.scrollY")
    assert before > 0
    refreshed = page.evaluate("document.getElementById('live').getAttribute('data-refreshed-at')")
    page.clock.fast_forward(REFRESH_SECONDS * 1000)
    page.wait_for_function(
        "(old) => document.getElementById('live').getAttribute('data-refreshed-at') !== old",
        arg=refreshed, timeout=15_000)
    assert page.evaluate("window.scrollY") == before


def test_responder_without_login_acknowledges_from_a_phone(phone_page, live_server, app):
    """A responder signs in on a phone and acknowledges on behalf of a colleague who has no login."""
    world = build_world(app)
    page = phone_page
    dialogs = no_dialogs(page)
    sign_in(page, live_server.url, world.responder_email)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "dashboard-phone")
    page.goto(f"{live_server.url}/incidents/{world.incident_id}")
    # Nothing is wider than the phone: no horizontal scrolling of the page itself.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.get_by_role("button", name="Acknowledge").is_visible()
    screenshot(page, "incident-phone")
    page.select_option("#ack-acting_as", str(world.paged_id))
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_selector(".flash-success")
    assert "Acknowledged (as Pat Paged)" in page.locator(".flash-success").inner_text()
    assert page.locator("#incident-status").inner_text() == "acknowledged"
    assert "Pat Paged" in page.locator("#timeline li").first.inner_text()
    assert dialogs == []
    screenshot(page, "incident-phone-acknowledged")


def test_viewer_sees_no_actions_and_forged_posts_are_refused(page, live_server, app):
    world = build_world(app)
    signed_in_as(page, app, live_server.url, world.viewer_email)
    incident_url = f"{live_server.url}/incidents/{world.incident_id}"
    page.goto(incident_url)
    assert page.locator("#actions").count() == 0
    assert page.get_by_role("button", name="Acknowledge").count() == 0
    assert page.locator("form[method=post]").count() == 1  # signing out only
    # A forged acknowledge from the viewer's own session, with a valid CSRF token: refused.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.request.post(f"{incident_url}/acknowledge",
                                 form={"csrf_token": token, "ack-acting_as": str(world.paged_id)},
                                 headers={"Origin": live_server.url})
    assert response.status == 403
    page.reload()
    assert page.locator("#incident-status").inner_text() == "triggered"


def test_form_without_csrf_token_is_refused(page, live_server, app):
    world = build_world(app)
    signed_in_as(page, app, live_server.url, world.admin_email)
    page.goto(f"{live_server.url}/teams")
    page.fill("#name", "No token team")
    page.evaluate("document.querySelectorAll('#create-team input[name=csrf_token]').forEach(e => e.remove())")
    page.click("#create-team button[type=submit]")
    assert page.get_by_role("heading", name=re.compile("Form expired or forged")).is_visible()
    page.goto(f"{live_server.url}/teams")
    assert "No token team" not in page.content()


def test_screenshots_of_the_configuration_pages(page, live_server, app):
    """Every main page renders in the browser with seeded data (and gets a screenshot); at desktop
    width the On call card, the policy's "now reaches" and the profile link work (the first-hour
    flows check them at phone width)."""
    world = build_world(app)
    url = live_server.url
    page.goto(url + signed_in_as(page, app, url, world.admin_email))  # an admin lands on the dashboard
    card = page.locator(f"#on-call-{world.schedule_id}")
    assert card.is_visible()
    assert all(word in card.inner_text() for word in ("Primary", "Pat Paged", "until", "sms"))
    pages = {
        "incident-desktop": f"/incidents/{world.incident_id}",
        "users": "/users",
        "user-detail": f"/users/{world.paged_id}",
        "user-deactivate-confirm": f"/users/{world.paged_id}/deactivate",
        "teams": "/teams",
        "team-detail": f"/teams/{world.team_id}",
        "schedules": "/schedules",
        "schedule-detail": f"/schedules/{world.schedule_id}",
        "escalation-policies": "/escalation-policies",
        "escalation-policy-detail": f"/escalation-policies/{world.policy_id}",
        "alert-source-detail": f"/alert-sources/{world.source_id}",
        "alert-source-regenerate-confirm": f"/alert-sources/{world.source_id}/regenerate",
    }
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    for name, path in pages.items():
        response = page.goto(url + path)
        assert response.status == 200, path
        screenshot(page, name)
        if name == "escalation-policy-detail":
            assert page.locator("#now-reaches").inner_text().startswith("Level 1 now reaches: Pat Paged")
    page.goto(f"{url}/schedules/{world.schedule_id}")
    assert page.locator("#timeline-svg g[data-layer=override]").count() >= 1

    # Destructive buttons ask first: dismissing keeps the member, accepting removes them.
    page.goto(f"{url}/teams/{world.team_id}")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.click("#members button:has-text('Remove')")
    assert asked == ["Remove Pat Paged from Platform?"]
    assert "Pat Paged" in page.locator("#members").inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#members button:has-text('Remove')")
    page.wait_for_selector(".flash-success")
    assert "No members." in page.locator("#members").inner_text()
    page.click("#profile-link")
    page.wait_for_url("**/profile")
    assert errors == [], errors  # no CSP violations or script errors


def test_first_visit_requests_nothing_that_fails(page, live_server):
    # A fresh browser asks for /favicon.ico unless the page names an icon; that 404 showed up
    # as a console error and an access-log line on every first visit.
    failed = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("console", lambda msg: failed.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live_server.url}/login")
    page.wait_for_load_state("networkidle")
    assert failed == [], failed
