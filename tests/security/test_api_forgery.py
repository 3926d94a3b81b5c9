"""Cross-site requests cannot use a browser's cached Basic credentials against the management
API (issue 12, finding 3)."""

from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import func, select

from pagerpal_core.models import User
from pagerpal_web.extensions import db
from tests.web.conftest import basic

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")

EVIL = "https://evil.example"
NEW_ADMIN = {"email": "intruder@example.test", "name": "Intruder", "password": "intruder-password",
             "role": "admin"}


def user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(User.id)))


def test_cross_site_text_plain_post_creating_an_admin_is_refused_over_a_socket(app, live_server, make_account):
    """What `<form enctype="text/plain" action=".../api/v1/users">` on another site sends."""
    admin = make_account(role="admin")
    before = user_count(app)
    body = json.dumps(NEW_ADMIN)[:-1] + ', "x": "="}'  # how a text/plain form smuggles JSON in
    response = requests.post(f"{live_server.url}/api/v1/users", data=body, timeout=60, headers={
        **basic(admin.email), "Content-Type": "text/plain", "Origin": EVIL})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "cross_origin_request"
    assert user_count(app) == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_form_content_types_are_refused_even_without_an_origin(app, client, make_account, content_type):
    admin = make_account(role="admin")
    before = user_count(app)
    response = client.post("/api/v1/users", data=json.dumps(NEW_ADMIN), headers={
        **basic(admin.email), "Content-Type": content_type})
    assert response.status_code == 415
    assert response.json["error"]["code"] == "unsupported_media_type"
    assert user_count(app) == before


def test_a_bodyless_form_post_is_refused_but_a_bodyless_script_post_is_not(app, client, make_account):
    admin = make_account(role="admin")
    person = make_account(role="responder")
    # A cross-site form with no fields still sends a Content-Type: refused.
    form = client.post(f"/api/v1/users/{person.id}/deactivate", data=b"",
                       headers={**basic(admin.email), "Content-Type": "text/plain"})
    assert form.status_code == 415
    # curl -X POST with no body and no Content-Type: fine.
    script = client.post(f"/api/v1/users/{person.id}/deactivate", headers=basic(admin.email))
    assert script.status_code == 200 and script.json["active"] is False


@pytest.mark.parametrize("origin", [EVIL, "null", "http://127.0.0.1:8000.evil.example"])
def test_requests_from_other_origins_are_refused(app, client, make_account, origin):
    admin = make_account(role="admin")
    before = user_count(app)
    response = client.post("/api/v1/users", json=NEW_ADMIN, headers={**basic(admin.email), "Origin": origin})
    assert response.status_code == 403
    assert user_count(app) == before
    assert client.get("/api/v1/users", headers={**basic(admin.email), "Origin": origin}).status_code == 403


def test_json_from_an_allowed_origin_or_without_one_works(app, client, make_account):
    admin = make_account(role="admin")
    listed = client.post("/api/v1/users", json={**NEW_ADMIN, "email": "a@example.test"},
                         headers={**basic(admin.email), "Origin": "http://127.0.0.1:8000"})
    assert listed.status_code == 201
    same_site = client.post("/api/v1/users", json={**NEW_ADMIN, "email": "b@example.test"},
                            headers={**basic(admin.email), "Origin": "http://localhost"})
    assert same_site.status_code == 201  # the test client's own host is this site
    scripted = client.post("/api/v1/users", json={**NEW_ADMIN, "email": "c@example.test"},
                           headers=basic(admin.email))
    assert scripted.status_code == 201


def test_anonymous_401_does_not_ask_a_browser_for_basic_credentials(client, make_account):
    anonymous = client.get("/api/v1/users")
    assert anonymous.status_code == 401
    assert not anonymous.headers["WWW-Authenticate"].lower().startswith("basic")
    admin = make_account(role="admin")
    wrong = client.get("/api/v1/users", headers=basic(admin.email, "not-the-password"))
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")  # a script sent Basic: tell it so


def test_webhooks_keep_their_own_content_types(client):
    """Alert webhooks are not management writes: no JSON-only rule (here: no key → 401, not 415)."""
    response = client.post("/api/v1/alerts", data="{}", headers={"Content-Type": "text/plain",
                                                                 "Origin": EVIL})
    assert response.status_code == 401
