"""/profile: own details, password change (current password required, other sessions end), contact
methods with Send test; bad input is a form error that changes nothing; admins edit anyone."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pagerpal_core.models import Notification, User, UserSession
from pagerpal_core.security import verify_password
from pagerpal_web.extensions import db
from tests.conftest import csrf_token_from
from tests.factories import PASSWORD, make_user
from tests.web.conftest import login

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")

NEW_PASSWORD = "a-brand-new-password"


def _setup(app):
    with app.app_context():
        admin = make_user(db.session, role="admin", email="admin@example.test", name="Ada Admin")
        viewer = make_user(db.session, role="viewer", email="vic@example.test", name="Vic Viewer",
                           contacts=[{"channel": "sms", "destination": "+14155550123"}])
        db.session.commit()
        return admin.id, viewer.id


def _user(app, user_id) -> tuple:
    with app.app_context():
        user = db.session.get(User, user_id)
        sessions = db.session.scalar(select(func.count()).select_from(UserSession)
                                     .where(UserSession.user_id == user_id))
        return user.name, user.email, user.timezone, user.password_hash, user.auth_version, sessions


def _token(client) -> str:
    return csrf_token_from(client.get("/profile").get_data(as_text=True))


def test_password_change_ends_other_sessions_and_keeps_this_one(app):
    _, viewer_id = _setup(app)
    here, elsewhere = app.test_client(), app.test_client()
    login(here, "vic@example.test")
    login(elsewhere, "vic@example.test")
    assert elsewhere.get("/profile").status_code == 200
    response = here.post("/profile/password", data={"csrf_token": _token(here), "password-current_password": PASSWORD,
                                                    "password-new_password": NEW_PASSWORD,
                                                    "password-confirm": NEW_PASSWORD})
    assert response.status_code == 303
    assert here.get("/profile").status_code == 200                     # this browser stays signed in
    gone = elsewhere.get("/profile")
    assert gone.status_code == 302 and "/login" in gone.headers["Location"]  # the other session ended
    *_, password_hash, _, sessions = _user(app, viewer_id)
    assert verify_password(password_hash, NEW_PASSWORD) and sessions == 1


def test_bad_password_changes_are_form_errors_and_change_nothing(app):
    _, viewer_id = _setup(app)
    client = app.test_client()
    login(client, "vic@example.test")
    before = _user(app, viewer_id)
    token = _token(client)
    wrong = client.post("/profile/password", data={"csrf_token": token, "password-current_password": "not-my-password",
                                                   "password-new_password": NEW_PASSWORD,
                                                   "password-confirm": NEW_PASSWORD})
    assert wrong.status_code == 422 and "is not your current password" in wrong.get_data(as_text=True)
    short = client.post("/profile/password", data={"csrf_token": token, "password-current_password": PASSWORD,
                                                   "password-new_password": "short", "password-confirm": "short"})
    assert short.status_code == 422 and "at least 10" in short.get_data(as_text=True)
    differ = client.post("/profile/password", data={"csrf_token": token, "password-current_password": PASSWORD,
                                                    "password-new_password": NEW_PASSWORD,
                                                    "password-confirm": NEW_PASSWORD + "x"})
    assert differ.status_code == 422 and "does not match" in differ.get_data(as_text=True)
    assert _user(app, viewer_id) == before
    assert client.get("/profile").status_code == 200


def test_profile_details_and_bad_zone(app):
    _, viewer_id = _setup(app)
    client = app.test_client()
    login(client, "vic@example.test")
    token = _token(client)
    bad = client.post("/profile", data={"csrf_token": token, "profile-name": "Vic", "profile-email": "vic@example.test",
                                        "profile-timezone": "Mars/Olympus"})
    assert bad.status_code == 422
    assert _user(app, viewer_id)[:3] == ("Vic Viewer", "vic@example.test", "UTC")
    ok = client.post("/profile", data={"csrf_token": token, "profile-name": "Vic V",
                                       "profile-email": "vic@example.test", "profile-timezone": "Europe/Berlin"})
    assert ok.status_code == 303
    assert _user(app, viewer_id)[:3] == ("Vic V", "vic@example.test", "Europe/Berlin")


def test_send_test_to_my_own_contact_method(app):
    _, viewer_id = _setup(app)
    client = app.test_client()
    login(client, "vic@example.test")
    html = client.get("/profile").get_data(as_text=True)
    with app.app_context():
        method_id = db.session.get(User, viewer_id).contact_methods[0].id
    assert f"/profile/contacts/{method_id}/test" in html and "Send test" in html
    response = client.post(f"/profile/contacts/{method_id}/test", data={"csrf_token": csrf_token_from(html)})
    assert response.status_code == 303
    with app.app_context():
        queued = db.session.scalars(select(Notification)).all()
        assert [(n.channel, n.destination, n.incident_id) for n in queued] == [("sms", "+14155550123", None)]


def test_admin_edits_any_user(app):
    _, viewer_id = _setup(app)
    client = app.test_client()
    login(client, "admin@example.test")
    html = client.get(f"/users/{viewer_id}/edit").get_data(as_text=True)
    response = client.post(f"/users/{viewer_id}/edit", data={
        "csrf_token": csrf_token_from(html), "user-name": "Victoria", "user-email": "victoria@example.test",
        "user-timezone": "Asia/Tokyo", "user-password": ""})
    assert response.status_code == 303
    assert _user(app, viewer_id)[:3] == ("Victoria", "victoria@example.test", "Asia/Tokyo")
    viewer = app.test_client()
    login(viewer, "victoria@example.test")
    assert viewer.get(f"/users/{viewer_id}/edit").status_code == 403
