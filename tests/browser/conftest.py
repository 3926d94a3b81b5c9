"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against a live server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("PAGERPAL_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def phone_page(browser):
    context = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def signed_in_as(page, app, url: str, email: str, password: str | None = None) -> str:
    """Sign `page`'s browser in as `email` without driving the form: the app's own login form is
    posted by the test client (CSRF token and all) and the session cookie it sets is handed to the
    browser. Signing in through Chromium is shown in test_login_browser.py and the first-run flows;
    elsewhere it was setup, costing a context a second of CPU. Returns where signing in lands:
    /mine for responders, /dashboard for everyone else."""
    from tests.factories import PASSWORD
    from tests.web.conftest import login

    response = login(app.test_client(), email, password or PASSWORD)
    assert response.status_code == 302, f"signing in as {email} was refused"
    cookies = [{"name": name, "value": value.split(";", 1)[0], "url": url}
               for name, _, value in (header.partition("=") for header in response.headers.getlist("Set-Cookie"))]
    assert cookies, "signing in set no cookie"
    page.context.add_cookies(cookies)
    return response.headers["Location"]


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
