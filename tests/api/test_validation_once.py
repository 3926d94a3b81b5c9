"""One validation pass: a body with a wrong type and a wrong value gets one 422 naming both, and writes nothing.

The API checks the JSON shape of each field and the core service checks what the values mean;
the answer merges both, as the README promises ("every bad field at once").
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pagerpal_core.models import AlertSource, Schedule, Team, User
from pagerpal_web.extensions import db

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


def count(app, model) -> int:
    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(model))
        db.session.remove()
        return total


CASES = [
    # (path, body, every field the 422 must name, the table that must not grow)
    ("/api/v1/users", {"email": 12, "role": "king"}, {"email", "role"}, User),
    ("/api/v1/users", {"email": "new@example.test", "role": "king", "timezone": "Mars/Olympus", "name": 7},
     {"role", "timezone", "name"}, User),
    ("/api/v1/users", {"email": "x@example.test", "bogus": 1, "role": "king"}, {"bogus", "role"}, User),
    ("/api/v1/teams", {"name": 5, "description": "x" * 5000}, {"name", "description"}, Team),
    ("/api/v1/schedules", {"name": ["a"], "timezone": "Nowhere/City"}, {"name", "timezone"}, Schedule),
    ("/api/v1/alert-sources", {"name": 3, "kind": "nagios"}, {"name", "kind"}, AlertSource),
]


@pytest.mark.parametrize("path, body, named, model", CASES)
def test_one_422_names_every_bad_field_and_writes_nothing(app, client, admin, path, body, named, model):
    before = count(app, model)
    response = client.post(path, headers=admin, json=body)
    assert response.status_code == 422, response.get_json()
    fields = response.get_json()["error"]["fields"]
    assert named <= set(fields), fields
    assert count(app, model) == before


def test_a_body_the_service_accepts_apart_from_a_wrong_type_is_still_refused(app, client, admin):
    """The type error alone: the service accepted the rest, and the commit is refused."""
    before = count(app, Team)
    response = client.post("/api/v1/teams", headers=admin, json={"name": "Platform", "description": 9})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"description"}
    assert count(app, Team) == before


def test_updates_name_every_bad_field_too(app, client, admin):
    created = client.post("/api/v1/users", headers=admin, json={"email": "pat@example.test"})
    assert created.status_code == 201, created.get_json()
    user_id = created.get_json()["id"]
    response = client.patch(f"/api/v1/users/{user_id}", headers=admin,
                            json={"name": 4, "role": "emperor", "timezone": "Atlantis/Capital"})
    assert response.status_code == 422
    assert {"name", "role", "timezone"} <= set(response.get_json()["error"]["fields"])
    assert client.get(f"/api/v1/users/{user_id}", headers=admin).get_json()["role"] == "responder"
