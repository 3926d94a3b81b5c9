"""Browser sessions (review finding 6): signing out ends the session on the server, idle sessions
expire, and the CSRF token changes at sign-in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from pagerpal_core.models import UserSession
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from tests.conftest import csrf_token_from
from tests.web.conftest import login

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture(autouse=True)
def _an_admin_exists(request):
    """Past first-run setup (so /login is the sign-in form), except for the test of setup itself."""
    if "first_run" not in request.node.name:
        request.getfixturevalue("make_account")(role="admin")


def signed_in(app, email):
    client = app.test_client()
    assert login(client, email).status_code == 302
    return client


def copy_of(app, client):
    """Another browser holding a copy of `client`'s session cookie (say, stolen from a shared machine)."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    return thief


def sign_out(client):
    token = csrf_token_from(client.get("/users").get_data(as_text=True))
    return client.post("/logout", data={"csrf_token": token})


def set_last_seen(app, moment) -> None:
    with app.app_context():
        db.session.execute(update(UserSession).values(last_seen_at=moment))
        db.session.commit()


def test_a_copied_cookie_stops_working_at_sign_out(app, make_account):
    """It used to keep working for 31 days: sign-out only cleared the browser's own cookie."""
    user = make_account(role="admin")
    browser = signed_in(app, user.email)
    thief = copy_of(app, browser)
    assert thief.get("/users").status_code == 200
    assert sign_out(browser).status_code == 302
    assert browser.get("/users").status_code == 302
    stolen = thief.get("/users")
    assert stolen.status_code == 302 and stolen.headers["Location"].startswith("/login")
    with app.app_context():
        assert db.session.scalars(select(UserSession)).all() == []


def test_signing_out_one_browser_leaves_the_others_signed_in(app, make_account):
    user = make_account(role="responder")
    laptop, phone = signed_in(app, user.email), signed_in(app, user.email)
    assert laptop.get_cookie("session").value != phone.get_cookie("session").value
    sign_out(laptop)
    assert laptop.get("/users").status_code == 302
    assert phone.get("/users").status_code == 200


def test_an_idle_session_is_signed_out_on_the_server(make_app, make_account):
    app = make_app(SESSION_IDLE_MINUTES="30")
    user = make_account(role="viewer")
    browser = signed_in(app, user.email)
    thief = copy_of(app, browser)
    set_last_seen(app, utcnow() - timedelta(minutes=31))
    assert browser.get("/users").status_code == 302
    assert thief.get("/users").status_code == 302
    # Signing in again starts a new session.
    assert signed_in(app, user.email).get("/users").status_code == 200


def test_activity_keeps_a_session_alive(app, make_account):
    """SESSION_IDLE_MINUTES defaults to 720: a session last seen 700 minutes ago still works, and using it
    moves its last-seen time forward."""
    user = make_account(role="viewer")
    browser = signed_in(app, user.email)
    before = utcnow() - timedelta(minutes=700)
    set_last_seen(app, before)
    assert browser.get("/users").status_code == 200
    with app.app_context():
        assert db.session.scalars(select(UserSession)).one().last_seen_at > before
    set_last_seen(app, utcnow() - timedelta(minutes=721))
    assert browser.get("/users").status_code == 302


def test_the_csrf_token_changes_at_sign_in(app, make_account):
    """A token the visitor held before signing in (perhaps planted by someone else) must not work after."""
    user = make_account(role="admin")
    client = app.test_client()
    before = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": user.email, "password": "correct-horse-battery",
                                           "csrf_token": before})
    assert response.status_code == 302
    refused = client.post("/logout", data={"csrf_token": before})
    assert refused.status_code == 400
    assert client.get("/users").status_code == 200          # still signed in
    after = csrf_token_from(client.get("/users").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": after}).status_code == 302
    assert client.get("/users").status_code == 302


def test_first_run_setup_also_starts_a_server_session(client, app):
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"name": "Ada", "email": "ada@example.test", "password": "a-long-password",
                                           "confirm": "a-long-password", "csrf_token": csrf_token_from(page)})
    assert response.status_code == 302
    thief = copy_of(app, client)
    assert thief.get("/users").status_code == 200
    sign_out(client)
    assert thief.get("/users").status_code == 302
