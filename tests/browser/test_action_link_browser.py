"""The action-link page in real headless Chromium at 375×812: usable without signing in, one tap acts."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot
from tests.conftest import LiveServer
from tests.responder.conftest import ADA_SMS, BASE_URL, LINK_RE, fake_infobip, fake_smtp, responder  # noqa: F401

# Here, not beside the other responder tests, so it shares this directory's one browser per process
# (a second Playwright in the same process fails).
pytestmark = [pytest.mark.browser, pytest.mark.backends("sqlite")]


def test_link_page_on_a_phone_acknowledges_in_one_tap(responder, phone_page):  # noqa: F811
    r = responder
    incident_id = r.alert()
    r.cycle()
    [sms] = r.sms_to(ADA_SMS)
    link = LINK_RE.search(sms).group(0)
    with LiveServer(r.app) as server:
        phone_page.goto(link.replace(BASE_URL, server.url))
        assert "/login" not in phone_page.url
        assert phone_page.locator("#incident-title-text").inner_text() == f"#{incident_id} Disk full on db-1"
        button = phone_page.locator("#ack-form button")
        box = button.bounding_box()
        # Phone first: the Acknowledge button is full width and on the first screen.
        assert box["width"] > 250 and box["y"] + box["height"] < 812
        assert phone_page.evaluate("document.documentElement.scrollWidth") <= 375
        screenshot(phone_page, "action-link-phone")
        button.tap()
        phone_page.wait_for_selector("#outcome")
        assert phone_page.locator("#outcome").inner_text() == f"Acknowledged #{incident_id} Disk full on db-1"
        assert phone_page.locator("#incident-status").inner_text() == "acknowledged"
        screenshot(phone_page, "action-link-phone-acknowledged")
    incident = r.incident(incident_id)
    assert incident.status == "acknowledged" and incident.acknowledged_by_id == r.ada.id
