""""Why was / wasn't X paged?": the trace names the policy, each level, who and why, and every attempt.

Clock-injected: the worker's real steps run through `run_cycle(ctx, now)` against the local
fake Infobip server.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from pagerpal_core.models import Incident
from pagerpal_core.services import maintenance
from pagerpal_core.services.schedules import create_override
from pagerpal_core.services.trace import trace_incident
from pagerpal_worker.loop import run_cycle
from tests.core.routing_setup import T0, make_source, make_world, open_incident
from tests.factories import make_user
from tests.worker.conftest import read

# Reads and arithmetic over rows the other tests store on both backends: SQLite is enough here.
pytestmark = pytest.mark.backends("sqlite")


def _trace(session, incident_id):
    return read(session, lambda: trace_incident(session, session.get(Incident, incident_id)).as_dict())


def test_two_level_escalation_with_an_override_names_the_override_and_each_attempt(session, make_ctx,
                                                                                    fake_infobip):
    world = make_world(session)
    dee = make_user(session, name="Dee", contacts=[{"channel": "sms", "destination": "+14155550199"}])
    # Ada's rotation turn is overridden by Dee for the afternoon.
    create_override(session, world.schedule, user=dee, starts_at=T0 - timedelta(hours=1),
                    ends_at=T0 + timedelta(hours=2), reason="swap")
    incident = open_incident(session, world.source, now=T0)
    session.commit()
    incident_id = incident.id

    ctx = make_ctx(fake_infobip.url)
    fake_infobip.fail_next(500)                    # the first SMS attempt fails ...
    run_cycle(ctx, T0 + timedelta(seconds=1))
    run_cycle(ctx, T0 + timedelta(seconds=30))     # ... and the retry is accepted
    run_cycle(ctx, T0 + timedelta(minutes=10, seconds=5))  # level 2: Ben, by email (no SMTP: it fails)

    trace = _trace(session, incident_id)
    assert trace["source"]["name"] == "grafana-prod"
    assert trace["policy"]["name"] == "default"
    assert trace["policy"]["chosen_because"] == "the policy of alert source grafana-prod"
    kinds = [s["kind"] for s in trace["steps"]]
    assert kinds[0] == "triggered" and kinds.count("paged") == 2 and "escalated" in kinds

    level1, level2 = [s for s in trace["steps"] if s["kind"] == "paged"]
    assert level1["level"] == 1 and level2["level"] == 2
    (dee_entry,) = level1["people"]
    assert dee_entry["name"] == "Dee" and dee_entry["reason"] == "override"
    assert dee_entry["explanation"].startswith("override until") and "schedule primary" in dee_entry["explanation"]
    assert "rules:" in dee_entry["text"] or "every contact method at once" in dee_entry["text"]
    (sms,) = dee_entry["notifications"]
    assert sms["channel"] == "sms" and sms["status"] == "sent" and sms["attempts"] == 2
    assert sms["provider_message_id"] and sms["sent_at"]
    assert "2 attempts" in sms["text"] and "provider accepted it" in sms["text"]
    assert any(e["kind"] == "notification_sent" for e in sms["events"])

    (ben_entry,) = level2["people"]
    assert ben_entry["name"] == "Ben" and ben_entry["reason"] == "user"
    assert ben_entry["explanation"] == "named on the level"
    email = ben_entry["notifications"][0]
    assert email["channel"] == "email" and email["status"] in ("exhausted", "failed")
    assert email["attempts"] == 1 and "SMTP_HOST" in email["last_error"]
    assert any(e["kind"] == "notification_failed" for e in email["events"])

    assert trace["stopped"]["kind"] == "paging"
    assert trace["summary"].startswith("Paged Dee, Ben.")


def test_an_acknowledged_incident_says_who_stopped_escalation(session):
    from pagerpal_core.services.incidents import acknowledge_incident

    world = make_world(session)
    incident = open_incident(session, world.source, now=T0)
    acknowledge_incident(session, incident, actor=world.ada, now=T0 + timedelta(minutes=2))
    session.commit()
    trace = _trace(session, incident.id)
    assert trace["stopped"]["kind"] == "acknowledged"
    assert "acknowledged by Ada" in trace["stopped"]["text"]
    (paged,) = [s for s in trace["steps"] if s["kind"] == "paged"]
    (ada,) = paged["people"]
    assert ada["reason"] == "rotation" and ada["explanation"].startswith("rotation turn until")


def test_an_unrouted_incident_explains_why_nobody_was_paged(session):
    source = make_source(session, None, name="no-policy")
    incident = open_incident(session, source, now=T0)
    session.commit()
    trace = _trace(session, incident.id)
    assert trace["policy"] is None and trace["paging_state"] == "unrouted"
    assert trace["stopped"]["kind"] == "unrouted"
    assert trace["summary"] == "Nobody was paged: no escalation policy applies to this incident."
    assert "No escalation policy applies" in trace["steps"][0]["text"]


def test_a_held_incident_explains_the_maintenance_window(session):
    world = make_world(session)
    maintenance.create_window(session, starts_at=T0, ends_at=T0 + timedelta(hours=2), reason="db upgrade",
                              alert_source_ids=[world.source.id], now=T0)
    incident = open_incident(session, world.source, now=T0 + timedelta(minutes=5))
    session.commit()
    trace = _trace(session, incident.id)
    assert trace["paging_state"] == "maintenance"
    assert trace["maintenance"]["holding"] and trace["maintenance"]["reason"] == "db upgrade"
    assert trace["stopped"]["kind"] == "maintenance"
    assert trace["summary"].startswith("Nobody is paged: in maintenance (db upgrade, until 2025-03-09 14:00")
    assert [s["kind"] for s in trace["steps"]] == ["triggered", "maintenance"]


def test_trace_api_is_readable_by_viewers_and_404s_for_unknown_incidents(app, client, accounts):
    from pagerpal_web.extensions import db

    with app.app_context():
        world = make_world(db.session)
        incident = open_incident(db.session, world.source, now=T0)
        db.session.commit()
        incident_id = incident.id
    response = client.get(f"/api/v1/incidents/{incident_id}/trace", headers=accounts["viewer"])
    assert response.status_code == 200, response.json
    body = response.json
    assert body["incident_id"] == incident_id and body["policy"]["name"] == "default"
    assert [s["kind"] for s in body["steps"]][:2] == ["triggered", "paged"]
    assert body["steps"][1]["people"][0]["name"] == "Ada"
    assert client.get("/api/v1/incidents/987654/trace", headers=accounts["viewer"]).status_code == 404
    assert client.get(f"/api/v1/incidents/{incident_id}/trace").status_code == 401


def test_a_long_provider_error_is_clipped_in_the_sentence(session):
    from sqlalchemy import select

    from pagerpal_core.models import Notification

    world = make_world(session)
    incident = open_incident(session, world.source, now=T0)
    row = session.scalars(select(Notification).where(Notification.incident_id == incident.id)).first()
    row.status, row.attempts, row.last_error = "exhausted", 3, "provider said: " + "x" * 900
    session.commit()
    trace = _trace(session, incident.id)
    (paged,) = [s for s in trace["steps"] if s["kind"] == "paged"]
    texts = [n["text"] for p in paged["people"] for n in p["notifications"]]
    assert any("x" * 250 in t for t in texts) and not any("x" * 400 in t for t in texts)
