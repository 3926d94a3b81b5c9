"""Sign-in, first-run bootstrap, Basic auth and roles."""

from __future__ import annotations

import threading

import pytest
import requests
from sqlalchemy import func, select

from pagerpal_core.models import User
from pagerpal_web.auth import credential_cache
from pagerpal_web.extensions import db
from tests.conftest import csrf_token_from
from tests.web.conftest import basic, login

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


def admin_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(User.id)).where(User.role == "admin"))


def test_signed_out_pages_redirect_to_login(client):
    response = client.get("/dashboard")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_first_run_login_offers_bootstrap_then_creates_admin(client, app):
    page = client.get("/login").get_data(as_text=True)
    assert "Create the first admin" in page
    token = csrf_token_from(page)
    response = client.post("/login", data={"name": "Ada", "email": "ada@example.test",
                                           "password": "a-long-password", "confirm": "a-long-password",
                                           "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
    assert client.get("/dashboard").status_code == 200
    assert admin_count(app) == 1
    # Once an admin exists, /login is a plain sign-in form and bootstrap is gone.
    other = app.test_client()
    assert "Create the first admin" not in other.get("/login").get_data(as_text=True)


def test_bootstrap_validation_errors_keep_input_and_create_nothing(client, app):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"name": "Ada", "email": "ada@example.test", "password": "short",
                                           "confirm": "different", "csrf_token": token})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "ada@example.test" in html and "Passwords differ" in html
    assert admin_count(app) == 0


def test_login_form_without_csrf_is_refused(client, make_account):
    user = make_account(role="admin")
    response = client.post("/login", data={"email": user.email, "password": "correct-horse-battery"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302


def test_concurrent_bootstrap_creates_exactly_one_admin(app, live_server):
    """Two people submit the first-run form at the same moment: one admin, one refusal."""
    sessions, tokens = [], []
    for _ in range(2):
        s = requests.Session()
        tokens.append(csrf_token_from(s.get(f"{live_server.url}/login").text))
        sessions.append(s)
    barrier, results = threading.Barrier(2), []

    def submit(i):
        barrier.wait()
        r = sessions[i].post(f"{live_server.url}/login", allow_redirects=False, data={
            "name": f"Admin {i}", "email": f"admin{i}@example.test", "password": "a-long-password",
            "confirm": "a-long-password", "csrf_token": tokens[i]})
        results.append(r.status_code)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(code < 500 for code in results), results
    assert admin_count(app) == 1


def test_admin_signs_in_and_out(client, make_account):
    user = make_account(role="admin")
    response = login(client, user.email)
    assert response.status_code == 302
    assert client.get("/dashboard").status_code == 200
    token = csrf_token_from(client.get("/dashboard").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/dashboard").status_code == 302


def test_login_email_is_case_insensitive(client, make_account):
    make_account(role="admin")
    user = make_account(role="viewer", email="Mixed.Case@Example.test")
    assert user.email == "Mixed.Case@Example.test"
    assert login(client, "mixed.case@example.TEST").status_code == 302


def test_responder_identity_without_password_cannot_log_in(client, make_account):
    make_account(role="admin")
    identity = make_account(role="responder", password=None)
    assert login(client, identity.email, "").status_code in (400, 401)
    assert login(client, identity.email, "anything-at-all").status_code == 401
    response = client.get("/api/v1/system/jobs", headers=basic(identity.email, "anything-at-all"))
    assert response.status_code == 401


def test_deactivated_user_cannot_log_in_or_use_the_api(client, app, make_account):
    make_account(role="admin")
    user = make_account(role="viewer")
    assert client.get("/api/v1/system/jobs", headers=basic(user.email)).status_code == 200
    login_client = app.test_client()
    assert login(login_client, user.email).status_code == 302
    with app.app_context():
        from pagerpal_core.services.users import deactivate_user

        deactivate_user(db.session, db.session.get(User, user.id))
        db.session.commit()
    # The cached Basic credentials and the open session are both refused now.
    assert client.get("/api/v1/system/jobs", headers=basic(user.email)).status_code == 401
    assert login_client.get("/dashboard").status_code == 302
    assert login(app.test_client(), user.email).status_code == 401


def test_api_requires_basic_auth_with_json_401(client):
    response = client.get("/api/v1/system/jobs")
    assert response.status_code == 401
    # No Basic challenge to an anonymous caller: a browser would prompt and cache the password.
    assert response.headers["WWW-Authenticate"].startswith("xBasic")
    assert response.json["error"]["code"] == "unauthorized"


def test_api_roles_viewer_reads_but_cannot_write(client, make_account):
    viewer = make_account(role="viewer")
    admin = make_account(role="admin")
    assert client.get("/api/v1/system/jobs", headers=basic(viewer.email)).status_code == 200
    body = {"email": "new@example.test", "name": "New", "role": "responder"}
    denied = client.post("/api/v1/users", json=body, headers=basic(viewer.email))
    assert denied.status_code == 403
    assert denied.json["error"]["code"] == "forbidden"
    created = client.post("/api/v1/users", json=body, headers=basic(admin.email))
    assert created.status_code == 201
    assert created.headers["Location"].endswith(f"/api/v1/users/{created.json['id']}")


def test_repeated_failed_logins_are_refused_for_a_while(client, make_account):
    user = make_account(role="admin")
    codes = [login(client, user.email, "wrong-password").status_code for _ in range(6)]
    assert codes[:4] == [401] * 4
    assert 429 in codes[4:]
    # Even the right password is refused while the block lasts.
    assert login(client, user.email).status_code == 429


def test_repeated_failed_basic_auth_is_refused_for_a_while(client, make_account):
    user = make_account(role="admin")
    credential_cache.clear()
    codes = [client.get("/api/v1/system/jobs", headers=basic(user.email, "wrong-password")).status_code
             for _ in range(6)]
    assert codes[-1] == 429


def test_login_refuses_open_redirects(client, make_account):
    user = make_account(role="admin")
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login?next=https://evil.example/x",
                           data={"email": user.email, "password": "correct-horse-battery",
                                 "csrf_token": token})
    assert response.headers["Location"] == "/dashboard"
