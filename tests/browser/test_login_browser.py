"""First-run bootstrap and sign-in in a real browser."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot

# Browser flows do not depend on the backend; SQLite keeps them quick.
pytestmark = [pytest.mark.browser, pytest.mark.backends("sqlite")]


def test_bootstrap_then_sign_in(page, live_server):
    page.goto(f"{live_server.url}/dashboard")
    assert "/login" in page.url
    assert page.get_by_role("heading", name="Create the first admin").is_visible()
    screenshot(page, "bootstrap")
    page.fill("#name", "Ada Admin")
    page.fill("#email", "ada@example.test")
    page.fill("#password", "a-long-password")
    page.fill("#confirm", "a-long-password")
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    screenshot(page, "dashboard-empty")
    page.click("text=Sign out")
    page.wait_for_url("**/login")
    page.fill("#email", "ada@example.test")
    page.fill("#password", "wrong-password")
    page.click("button[type=submit]")
    assert page.locator(".flash-error").is_visible()
    page.fill("#email", "ada@example.test")
    page.fill("#password", "a-long-password")
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    screenshot(page, "login")
