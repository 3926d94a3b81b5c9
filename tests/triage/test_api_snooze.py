"""POST /api/v1/incidents/<id>/snooze: good input snoozes; bad input is a 4xx that changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pagerpal_core.models import Incident, IncidentEvent
from pagerpal_web.extensions import db
from tests.core.routing_setup import make_world, open_incident
from tests.web.conftest import basic

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
def setup(app, make_account):
    with app.app_context():
        world = make_world(db.session)
        incident = open_incident(db.session, world.source)
        db.session.commit()
        ids = {"incident": incident.id, "ada": world.ada.id}
    accounts = {role: basic(make_account(role=role).email) for role in ("viewer", "responder")}
    return ids, accounts


def state(app, incident_id: int) -> tuple:
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        events = db.session.scalar(select(func.count()).select_from(IncidentEvent)
                                   .where(IncidentEvent.incident_id == incident_id))
        return incident.status, incident.snoozed_until, incident.retrigger_at, events


BAD = [
    ("no body", None, 422),
    ("not JSON", b"minutes=60", 400),
    ("minutes missing", {}, 422),
    ("string", {"minutes": "60"}, 422),
    ("float", {"minutes": 60.5}, 422),
    ("boolean", {"minutes": True}, 422),
    ("null", {"minutes": None}, 422),
    ("zero", {"minutes": 0}, 422),
    ("negative", {"minutes": -30}, 422),
    ("too long", {"minutes": 10000}, 422),
    ("one past a day", {"minutes": 1441}, 422),
    ("unknown field", {"minutes": 60, "until": "tomorrow"}, 422),
    ("bad acting_as", {"minutes": 60, "acting_as": "ada"}, 422),
]


@pytest.mark.parametrize("label,body,status", BAD, ids=[b[0] for b in BAD])
def test_bad_snooze_input_is_a_4xx_and_changes_nothing(app, client, setup, label, body, status):
    ids, accounts = setup
    before = state(app, ids["incident"])
    url = f"/api/v1/incidents/{ids['incident']}/snooze"
    if isinstance(body, bytes):
        response = client.post(url, data=body, headers={**accounts["responder"], "Content-Type": "application/json"})
    else:
        response = client.post(url, json=body, headers=accounts["responder"])
    assert response.status_code == status, response.get_data(as_text=True)
    assert set(response.json["error"]) >= {"code", "message"}
    assert state(app, ids["incident"]) == before


def test_unknown_incident_and_viewer_are_refused(app, client, setup):
    ids, accounts = setup
    before = state(app, ids["incident"])
    assert client.post("/api/v1/incidents/987654/snooze", json={"minutes": 60},
                       headers=accounts["responder"]).status_code == 404
    assert client.post(f"/api/v1/incidents/{ids['incident']}/snooze", json={"minutes": 60},
                       headers=accounts["viewer"]).status_code == 403
    assert client.post(f"/api/v1/incidents/{ids['incident']}/snooze", json={"minutes": 60}).status_code == 401
    assert state(app, ids["incident"]) == before


def test_snooze_acknowledges_until_then_and_a_resolved_incident_is_a_409(app, client, setup):
    ids, accounts = setup
    url = f"/api/v1/incidents/{ids['incident']}"
    response = client.post(f"{url}/snooze", json={"minutes": 60, "acting_as": ids["ada"]},
                           headers=accounts["responder"])
    assert response.status_code == 200
    body = response.json
    assert (body["status"], body["paging_state"], body["snoozed_by_id"]) == ("acknowledged", "snoozed", ids["ada"])
    assert body["snoozed_until"] == body["retrigger_at"] and body["snoozed_until"].endswith("Z")
    timeline = client.get(url, headers=accounts["viewer"]).json["timeline"]
    assert timeline[-1]["kind"] == "snoozed" and timeline[-1]["message"].startswith("Snoozed for 1 h until ")
    assert client.post(f"{url}/resolve", json={}, headers=accounts["responder"]).status_code == 200
    before = state(app, ids["incident"])
    conflict = client.post(f"{url}/snooze", json={"minutes": 30}, headers=accounts["responder"])
    assert conflict.status_code == 409 and conflict.json["error"]["code"]
    assert state(app, ids["incident"]) == before


def test_policy_ack_timeout_is_accepted_and_validated_by_the_api(app, client, make_account):
    admin = basic(make_account(role="admin").email)
    created = client.post("/api/v1/escalation-policies", json={"name": "Ops", "ack_timeout_minutes": 30},
                          headers=admin)
    assert created.status_code == 201 and created.json["ack_timeout_minutes"] == 30
    url = f"/api/v1/escalation-policies/{created.json['id']}"
    for bad in (0, -1, "30", 10081, True):
        response = client.patch(url, json={"ack_timeout_minutes": bad}, headers=admin)
        assert response.status_code == 422, bad
        assert "ack_timeout_minutes" in response.json["error"]["fields"]
    assert client.patch(url, json={"ack_timeout_minutes": None}, headers=admin).json["ack_timeout_minutes"] is None
