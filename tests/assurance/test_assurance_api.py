"""The API of heartbeats, the simulator and the watchdog: CRUD, bad input → 422 naming the field,
a wrong ping token → 404 with nothing written, pings rate-limited per monitor."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from pagerpal_core.models import HeartbeatMonitor, Incident, IncidentEvent
from pagerpal_core.services.escalation_policies import create_policy
from pagerpal_core.services.heartbeats import PING_BUCKET_CAPACITY
from pagerpal_core.services.schedules import create_override, create_rotation, create_schedule
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from pagerpal_worker.loop import run_cycle
from tests.core.routing_setup import make_world, open_incident
from tests.factories import make_user

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
def policy_id(app):
    with app.app_context():
        ada, ben = make_user(db.session, name="Ada"), make_user(db.session, name="Ben")
        schedule = create_schedule(db.session, name="primary", timezone="Europe/Berlin")
        create_rotation(db.session, schedule, start_date="2027-03-01", shift_unit="days", handoff_time="09:00",
                        participants=[ada, ben])
        create_override(db.session, schedule, user=ben, starts_at="2027-03-01T10:00:00Z",
                        ends_at="2027-03-01T12:00:00Z")
        policy = create_policy(db.session, name="default", levels=[
            {"delay_minutes": 5, "targets": [{"type": "schedule", "id": schedule.id}]}])
        db.session.commit()
        return policy.id


def _create(client, admin, policy_id, **extra):
    body = {"name": "nightly-backup", "interval_seconds": 3600, "grace_seconds": 300,
            "escalation_policy_id": policy_id, **extra}
    return client.post("/api/v1/heartbeats", json=body, headers=admin)


def _db_counts(app):
    with app.app_context():
        monitors = [(m.ping_count, m.last_ping_at, m.state, m.updated_at)
                    for m in db.session.scalars(select(HeartbeatMonitor).order_by(HeartbeatMonitor.id))]
        incidents = db.session.scalar(select(func.count()).select_from(Incident))
        events = db.session.scalar(select(func.count()).select_from(IncidentEvent))
        db.session.rollback()
        return monitors, incidents, events


def test_heartbeat_crud_and_the_token_shown_once(app, client, admin, accounts, policy_id):
    response = _create(client, admin, policy_id)
    assert response.status_code == 201, response.json
    body = response.json
    token = body["token"]
    assert token.startswith("pph_") and body["ping_url"].endswith(f"/api/v1/heartbeats/{token}/ping")
    assert body["state"] == "new" and body["masked_token"] == "pph_…" + token[-4:]
    location = response.headers["Location"]
    read = client.get(location, headers=accounts["viewer"]).json
    assert "token" not in read and "ping_url" not in read and read["name"] == "nightly-backup"
    assert client.get("/api/v1/heartbeats", headers=accounts["viewer"]).json["items"][0]["id"] == body["id"]
    assert client.post("/api/v1/heartbeats", json={}, headers=accounts["responder"]).status_code == 403

    patched = client.patch(location, json={"interval_seconds": 60, "grace_seconds": 0}, headers=admin)
    assert patched.status_code == 200 and patched.json["interval_seconds"] == 60
    assert _create(client, admin, policy_id).status_code == 409

    # The ping needs no account, by GET (curl without -X) or POST.
    ping = client.get(f"/api/v1/heartbeats/{token}/ping")
    assert ping.status_code == 200 and ping.json["state"] == "up"
    assert client.post(f"/api/v1/heartbeats/{token}/ping", data="anything").status_code == 200
    assert client.get(location, headers=admin).json["ping_count"] == 2

    assert client.delete(location, headers=admin).status_code == 204
    assert client.get(location, headers=admin).status_code == 404
    assert client.get(f"/api/v1/heartbeats/{token}/ping").status_code == 404


@pytest.mark.parametrize("change,field", [
    ({"interval_seconds": 9}, "interval_seconds"),
    ({"interval_seconds": 31 * 86400 + 1}, "interval_seconds"),
    ({"interval_seconds": "60"}, "interval_seconds"),
    ({"grace_seconds": -1}, "grace_seconds"),
    ({"grace_seconds": 1.5}, "grace_seconds"),
    ({"escalation_policy_id": 99999}, "escalation_policy_id"),
    ({"escalation_policy_id": None}, "escalation_policy_id"),
    ({"name": ""}, "name"),
    ({"name": "x" * 121}, "name"),
    ({"name": "a\u0000b"}, "name"),
    ({"colour": "red"}, "colour"),
])
def test_bad_heartbeat_input_is_422_naming_the_field(app, client, admin, policy_id, change, field):
    response = _create(client, admin, policy_id, **change)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["fields"]
    assert _db_counts(app)[0] == []
    good = _create(client, admin, policy_id).json
    response = client.patch(f"/api/v1/heartbeats/{good['id']}", json=change, headers=admin)
    assert response.status_code == 422 and field in response.json["error"]["fields"]


def test_missing_fields_are_named(client, admin):
    response = client.post("/api/v1/heartbeats", json={}, headers=admin)
    assert response.status_code == 422
    assert set(response.json["error"]["fields"]) == {"name", "interval_seconds", "escalation_policy_id"}


def test_wrong_ping_token_is_404_and_writes_nothing(app, client, admin, policy_id):
    token = _create(client, admin, policy_id).json["token"]
    client.get(f"/api/v1/heartbeats/{token}/ping")
    before = _db_counts(app)
    for wrong in ("pph_" + "A" * 43, token[:-1] + ("B" if token[-1] != "B" else "C"), "nope", token.upper()):
        for method in (client.get, client.post):
            response = method(f"/api/v1/heartbeats/{wrong}/ping")
            assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    assert _db_counts(app) == before


def test_pings_are_rate_limited_per_monitor(app, client, admin, policy_id):
    token = _create(client, admin, policy_id).json["token"]
    other = _create(client, admin, policy_id, name="hourly").json["token"]
    for _ in range(PING_BUCKET_CAPACITY):
        assert client.get(f"/api/v1/heartbeats/{token}/ping").status_code == 200
    before = _db_counts(app)
    refused = client.get(f"/api/v1/heartbeats/{token}/ping")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert _db_counts(app) == before
    assert client.get(f"/api/v1/heartbeats/{other}/ping").status_code == 200


def test_simulate_endpoint(client, accounts, policy_id):
    viewer = accounts["viewer"]
    url = f"/api/v1/escalation-policies/{policy_id}/simulate"
    # 2027-03-01 is the rotation's first day: Ada from 09:00 CET (08:00Z); Ben's override 10:00Z-12:00Z.
    body = client.get(url + "?at=2027-03-01T09:00:00Z", headers=viewer).json
    assert body["at"] == "2027-03-01T09:00:00Z"
    [level] = body["levels"]
    assert (level["level_number"], level["delay_minutes"]) == (1, 5)
    [reach] = level["reaches"]
    assert (reach["user"]["name"], reach["reason"], reach["until"]) == ("Ada", "rotation", "2027-03-02T08:00:00Z")
    reach = client.get(url + "?at=2027-03-01T11:00:00%2B01:00", headers=viewer).json["levels"][0]["reaches"][0]
    assert (reach["user"]["name"], reach["reason"], reach["until_local"]) == ("Ben", "override", "13:00 CET")
    assert reach["explanation"] == "override until 13:00 CET, schedule primary"
    assert client.get(url, headers=viewer).status_code == 200  # now, by default

    for bad in ("yesterday", "2027-13-01T00:00:00Z", "2027-03-01T25:00", "99999-01-01", "0001-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z"):
        response = client.get(url, query_string={"at": bad}, headers=viewer)
        assert response.status_code == 422, bad
        assert list(response.json["error"]["fields"]) == ["at"]
    assert client.get("/api/v1/escalation-policies/99999/simulate", headers=viewer).status_code == 404
    assert client.get(url).status_code == 401


def test_system_jobs_reports_the_watchdog(app, client, accounts, make_ctx):
    body = client.get("/api/v1/system/jobs", headers=accounts["viewer"]).json
    assert body["watchdog"] is None  # the worker has not run yet
    now = utcnow()
    with app.app_context():
        world = make_world(db.session)
        incident_id = open_incident(db.session, world.source, now=now - timedelta(hours=1)).id
        db.session.commit()
    run_cycle(make_ctx(ESCALATION_WORKER_ENABLED="false"), now)
    watchdog = client.get("/api/v1/system/jobs", headers=accounts["viewer"]).json["watchdog"]
    assert watchdog["healthy"] is False and watchdog["overdue_incident_ids"] == [incident_id]
    assert "overdue for escalation" in watchdog["problems"][0]


def test_metrics_report_the_watchdog(make_app, make_ctx):
    app = make_app(METRICS="open")
    client = app.test_client()
    assert "pagerpal_watchdog_healthy" not in client.get("/metrics").get_data(as_text=True)  # not run yet
    now = utcnow()
    run_cycle(make_ctx(), now)
    assert "pagerpal_watchdog_healthy 1.0" in client.get("/metrics").get_data(as_text=True)
    with app.app_context():
        world = make_world(db.session)
        open_incident(db.session, world.source, now=now - timedelta(hours=1))
        db.session.commit()
    run_cycle(make_ctx(ESCALATION_WORKER_ENABLED="false"), now + timedelta(seconds=11))
    text = client.get("/metrics").get_data(as_text=True)
    assert "pagerpal_watchdog_healthy 0.0" in text and "pagerpal_watchdog_overdue_escalations 1.0" in text


def test_access_log_masks_the_ping_token(client, admin, policy_id, caplog):
    token = _create(client, admin, policy_id).json["token"]
    with caplog.at_level("INFO", logger="pagerpal.access"):
        assert client.get(f"/api/v1/heartbeats/{token}/ping").status_code == 200
        assert client.get("/api/v1/heartbeats/pph_unknown/ping").status_code == 404
    paths = [record.fields["path"] for record in caplog.records if record.name == "pagerpal.access"]
    assert paths[-2:] == ["/api/v1/heartbeats/…/ping", "/api/v1/heartbeats/…/ping"]
    assert token not in caplog.text
