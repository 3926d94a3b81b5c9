"""A new incident nobody can be paged for (its source has no policy) is written without loading it
as an object — one statement with its timeline rows on PostgreSQL — and must end up exactly as the
general path (`trigger_incident`) leaves one; a maintenance window still holds it instead."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from pagerpal_core.models import AlertSource, Incident, IncidentEvent
from pagerpal_core.models.maintenance import MaintenanceHold
from pagerpal_core.services import ingestion, maintenance
from pagerpal_core.services.incidents import trigger_incident
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from tests.ingestion.conftest import post
from tests.ingestion.test_hot_path import statements

INCIDENT_STATE = ("status", "unrouted", "page_generation", "current_level", "escalation_round",
                  "next_escalation_at", "policy_id", "team_id", "occurrence_count", "repeats_unlogged",
                  "assignee_id", "assignment_pinned")


def _state(app, incident_id) -> tuple[dict, list[tuple]]:
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        state = {name: getattr(incident, name) for name in INCIDENT_STATE}
        events = [(e.kind, e.message.replace(incident.title, "<title>"), e.actor_label, e.actor_source_id,
                   e.actor_user_id, {k: v for k, v in e.detail.items() if k not in ("payload", "external_id")})
                  for e in db.session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                              .order_by(IncidentEvent.id))]
        db.session.remove()
        return state, events


def _through_the_general_path(app, source_id) -> int:
    """An incident of the same source opened as the UI and the worker open one: ORM + trigger_incident."""
    with app.app_context():
        now = utcnow()
        source = db.session.get(AlertSource, source_id)
        incident = Incident(alert_source_id=source_id, external_id="general", title="General path", status="triggered",
                            details={}, links=[], created_at=now, updated_at=now, last_seen_at=now)
        db.session.add(incident)
        db.session.flush()
        trigger_incident(db.session, incident, actor=source, now=now, base_url="http://localhost",
                         detail={"external_id": "general", "source_severity": "critical"})
        db.session.commit()
        return incident.id


def test_a_new_incident_nobody_can_be_paged_for_ends_up_as_the_general_path_leaves_one(app, client, source):
    response = post(client, "/api/v1/alerts", {"title": "Disk full", "external_id": "disk",
                                               "severity": "critical"}, source.key)
    assert response.status_code == 201, response.get_json()
    lean_id = response.get_json()["incident_id"]
    lean, general = _state(app, lean_id), _state(app, _through_the_general_path(app, source.id))
    assert lean[0] == general[0]
    assert lean[0]["unrouted"] is True and lean[0]["page_generation"] == 1
    assert [e[0] for e in lean[1]] == ["triggered", "unrouted"]
    assert lean[1] == general[1]  # (the external id and payload left aside: they differ by design)


def test_a_new_unrouted_incident_is_one_statement_on_postgresql(app, client, source, backend, monkeypatch):
    post(client, "/api/v1/alerts", {"title": "warm", "external_id": "warm"}, source.key)
    sessions = []
    make_session = db.session.registry.createfunc
    monkeypatch.setattr(db.session.registry, "createfunc", lambda: sessions.append(1) or make_session())
    with statements(app) as seen:
        response = post(client, "/api/v1/alerts", {"title": "Disk full", "external_id": "disk"}, source.key)
    assert response.status_code == 201
    seen = [s for s in seen if not s.startswith(("BEGIN", "COMMIT"))]
    if backend == "postgresql":
        # A key this process has not seen open opens first: the token, the incident and its
        # timeline rows in one statement, on a driver connection: no ORM session is made.
        assert len(seen) == 1 and seen[0].startswith("WITH tok AS (UPDATE alert_sources"), seen
        assert "INSERT INTO incidents" in seen[0] and "INSERT INTO incident_events" in seen[0]
        assert sessions == []
    else:  # token, count, the windows, the incident, its two timeline rows (one INSERT)
        assert len(seen) == 5, seen


@pytest.mark.backends("postgresql")
def test_opening_first_a_key_that_is_already_open_counts_it(app, client, source):
    """Another process opened the incident: the open conflicts, and the alert is counted."""
    key = {"title": "Disk full", "external_id": "disk"}
    assert post(client, "/api/v1/alerts", key, source.key).status_code == 201
    with app.app_context():
        ingestion._LIKELY_OPEN.clear()  # as if another process had opened it
    with statements(app) as seen:
        response = post(client, "/api/v1/alerts", key, source.key)
    assert response.status_code == 200 and response.get_json()["occurrence_count"] == 2
    seen = [s for s in seen if not s.startswith(("BEGIN", "COMMIT"))]
    # The open (token taken, nothing written), the count, the note of the first repeat.
    assert len(seen) == 3, seen
    with app.app_context():
        assert db.session.execute(text("SELECT count(*) FROM incidents")).scalar() == 1
        assert db.session.execute(text("SELECT count(*) FROM incident_events WHERE kind = 'triggered'")).scalar() == 1


def test_a_maintenance_window_holds_a_new_incident_of_a_source_without_policy(app, client, source):
    with app.app_context():
        now = utcnow()
        maintenance.create_window(db.session, starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1),
                                  reason="rack move", alert_source_ids=[source.id], now=now)
        db.session.commit()
    response = post(client, "/api/v1/alerts", {"title": "Disk full", "external_id": "disk"}, source.key)
    assert response.status_code == 201
    incident_id = response.get_json()["incident_id"]
    state, events = _state(app, incident_id)
    assert state["unrouted"] is False and state["page_generation"] == 1
    assert [e[0] for e in events] == ["triggered", "maintenance"]
    assert events[1][1].startswith("In maintenance (rack move, until ")
    with app.app_context():
        assert db.session.get(MaintenanceHold, incident_id) is not None
