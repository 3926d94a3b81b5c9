"""Users over the API: create, update, deactivate, contact methods, and the auth cache's invalidation."""

from __future__ import annotations

import pytest

from tests.web.conftest import basic

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


def test_create_identity_update_and_read(client, admin):
    created = client.post("/api/v1/users", headers=admin, json={
        "email": "ada@example.test", "name": "Ada", "contact_methods": [
            {"channel": "sms", "destination": "+14155550123"}]})
    assert created.status_code == 201
    user = created.json
    assert created.headers["Location"].endswith(f"/api/v1/users/{user['id']}")
    assert user["role"] == "responder" and user["can_log_in"] is False
    assert user["created_at"].endswith("Z") and user["contact_methods"][0]["channel"] == "sms"

    patched = client.patch(f"/api/v1/users/{user['id']}", headers=admin,
                           json={"name": "Ada Lovelace", "timezone": "Europe/London", "role": "viewer",
                                 "password": "a-long-enough-password"})
    assert patched.status_code == 200
    assert patched.json["name"] == "Ada Lovelace" and patched.json["timezone"] == "Europe/London"
    assert patched.json["role"] == "viewer" and patched.json["can_log_in"] is True
    ada = basic("ada@example.test", "a-long-enough-password")
    assert client.get("/api/v1/users", headers=ada).status_code == 200

    removed = client.patch(f"/api/v1/users/{user['id']}", headers=admin, json={"password": None})
    assert removed.json["can_log_in"] is False


def test_update_validation_and_conflicts_change_nothing(client, admin, make_account):
    other = make_account(role="responder")
    target = make_account(role="responder")
    url = f"/api/v1/users/{target.id}"
    bad = client.patch(url, headers=admin, json={"name": "", "timezone": "Mars/Base", "email": "nope"})
    assert bad.status_code == 422 and set(bad.json["error"]["fields"]) == {"name", "timezone", "email"}
    unknown = client.patch(url, headers=admin, json={"id": 5})
    assert unknown.status_code == 422 and unknown.json["error"]["fields"] == {"id": "unknown field"}
    clash = client.patch(url, headers=admin, json={"email": other.email.upper(), "name": "Changed"})
    assert clash.status_code == 409 and clash.json["error"]["fields"]["email"]
    assert client.get(url, headers=admin).json["name"] == target.name  # the whole change was rolled back
    assert client.patch("/api/v1/users/999999", headers=admin, json={"name": "x"}).status_code == 404


def test_role_change_and_deactivation_take_effect_on_the_next_call(client, admin, make_account):
    person = make_account(role="admin")
    auth = basic(person.email)
    assert client.post("/api/v1/teams", headers=auth, json={"name": "Ops"}).status_code == 201  # cached now
    client.patch(f"/api/v1/users/{person.id}", headers=admin, json={"role": "viewer"})
    assert client.post("/api/v1/teams", headers=auth, json={"name": "Ops 2"}).status_code == 403
    deactivated = client.post(f"/api/v1/users/{person.id}/deactivate", headers=admin)
    assert deactivated.status_code == 200 and deactivated.json["active"] is False
    assert deactivated.json["deactivated_at"]
    assert client.get("/api/v1/users", headers=auth).status_code == 401
    assert client.post(f"/api/v1/users/{person.id}/reactivate", headers=admin).json["active"] is True
    assert client.get("/api/v1/users", headers=auth).status_code == 200


def test_the_last_admin_cannot_be_demoted_or_deactivated(client, make_account):
    only = make_account(role="admin")
    auth = basic(only.email)
    # Only they could do it, and nobody may demote or deactivate themselves (403, before the 409 guard).
    demote = client.patch(f"/api/v1/users/{only.id}", headers=auth, json={"role": "viewer"})
    assert demote.status_code == 403 and "admin" in demote.json["error"]["message"]
    assert client.post(f"/api/v1/users/{only.id}/deactivate", headers=auth).status_code == 403
    assert client.get(f"/api/v1/users/{only.id}", headers=auth).json["role"] == "admin"


def test_no_hard_delete_of_users(client, admin, make_account):
    person = make_account()
    assert client.delete(f"/api/v1/users/{person.id}", headers=admin).status_code == 405


def test_contact_methods(client, admin, make_account):
    person = make_account()
    base = f"/api/v1/users/{person.id}/contact-methods"
    created = client.post(base, headers=admin, json={"channel": "whatsapp", "destination": "+447700900123"})
    assert created.status_code == 201
    method_id = created.json["id"]
    assert created.headers["Location"].endswith(f"{base}/{method_id}")
    again = client.post(base, headers=admin, json={"channel": "whatsapp", "destination": "+447700900123"})
    assert again.status_code == 409
    assert client.post(base, headers=admin, json={"channel": "pigeon", "destination": "x"}).json["error"][
        "fields"] == {"channel": "channel must be one of sms, whatsapp, email, webhook"}
    assert client.post(base, headers=admin, json={"channel": "sms", "destination": "12"}).status_code == 422
    off = client.patch(f"{base}/{method_id}", headers=admin, json={"enabled": False})
    assert off.status_code == 200 and off.json["enabled"] is False
    assert [m["id"] for m in client.get(base, headers=admin).json["items"]] == [method_id]
    assert client.delete(f"{base}/{method_id}", headers=admin).status_code == 204
    assert client.get(f"{base}/{method_id}", headers=admin).status_code == 404
    other = make_account()
    foreign = client.post(f"/api/v1/users/{other.id}/contact-methods", headers=admin,
                          json={"channel": "email", "destination": "o@example.test"}).json["id"]
    assert client.get(f"{base}/{foreign}", headers=admin).status_code == 404  # not this user's


def test_pagination_is_keyset_and_stable_under_inserts(client, admin):
    for n in range(5):
        client.post("/api/v1/users", headers=admin, json={"email": f"p{n}@example.test"})
    first = client.get("/api/v1/users?limit=2", headers=admin).json
    assert len(first["items"]) == 2 and first["next"]
    # A user created while paging lands at the end: no page repeats or skips a row.
    client.post("/api/v1/users", headers=admin, json={"email": "late@example.test"})
    seen = [u["id"] for u in first["items"]]
    url = first["next"]
    while url:
        page = client.get(url, headers=admin).json
        seen += [u["id"] for u in page["items"]]
        url = page["next"]
    assert seen == sorted(set(seen)) and len(seen) == 9  # 3 role accounts + 5 + the late one
    for bad in ("limit=0", "limit=201", "limit=x", "after=-1"):
        response = client.get(f"/api/v1/users?{bad}", headers=admin)
        assert response.status_code == 422, bad


def test_text_the_database_cannot_store_is_422_not_500(client, admin):
    for bad in ({"email": "nul@example.test", "name": "a\u0000b"},
                {"email": "s@example.test", "name": "\ud800"},
                {"email": "big@example.test", "contact_methods": [{"channel": "sms", "destination": "x",
                                                                   "id": 2**40}]}):
        response = client.post("/api/v1/users", headers=admin, json=bad)
        assert response.status_code == 422, response.json
        assert response.json["error"]["fields"]
    assert client.get("/api/v1/incidents?text=%00", headers=admin).status_code == 422
    assert client.get(f"/api/v1/users/{2**40}", headers=admin).status_code == 404
