"""Maintenance windows: alerts during a window page nobody; the open incident pages when it ends.

Clock-injected: alerts go through the core ingestion service with a chosen `now`, and the
worker's real steps run through `run_cycle(ctx, now)`.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from pagerpal_core.errors import Conflict, Invalid
from pagerpal_core.models import Incident, Notification
from pagerpal_core.models.maintenance import MaintenanceHold
from pagerpal_core.payloads.common import RESOLVE, TRIGGER, AlertEvent
from pagerpal_core.services import maintenance
from pagerpal_core.services.ingestion import ingest_event
from pagerpal_worker.loop import run_cycle
from tests.core.routing_setup import BASE_URL, T0, event_kinds, make_source, make_world, open_incident
from tests.worker.conftest import read


def _alert(session, world, external_id, *, now, action=TRIGGER):
    result = ingest_event(session, world.source, AlertEvent(action=action, external_id=external_id,
                                                            title=f"{external_id} is down", severity="critical"),
                          now=now, base_url=BASE_URL)
    session.commit()
    return result


def _page_count(session, incident_id=None):
    query = select(func.count()).select_from(Notification)
    if incident_id is not None:
        query = query.where(Notification.incident_id == incident_id)
    return read(session, lambda: session.scalar(query))


def _window(session, world, *, start, hours=2, sources=True, policies=False, reason="db upgrade"):
    window = maintenance.create_window(
        session, starts_at=start, ends_at=start + timedelta(hours=hours), reason=reason,
        alert_source_ids=[world.source.id] if sources else None,
        policy_ids=[world.policy.id] if policies else None, now=T0)
    session.commit()
    return window


def test_alerts_during_a_window_page_nobody_and_the_open_incident_pages_when_it_ends(session, make_ctx):
    world = make_world(session)
    window = _window(session, world, start=T0, hours=2)
    ctx = make_ctx()
    during = T0 + timedelta(minutes=30)

    opened = _alert(session, world, "db-1", now=during)
    assert opened.outcome == "created"
    # Recorded, deduplicated and recoverable as usual ...
    repeat = _alert(session, world, "db-1", now=during + timedelta(minutes=1))
    assert repeat.incident_id == opened.incident_id and repeat.outcome == "repeated"
    recovered = _alert(session, world, "web-1", now=during)
    _alert(session, world, "web-1", now=during + timedelta(minutes=2), action=RESOLVE)
    # ... but nobody is paged, even after several worker cycles inside the window.
    for minutes in (5, 30, 60, 89):
        run_cycle(ctx, during + timedelta(minutes=minutes))
    assert _page_count(session) == 0
    incident = read(session, lambda: session.get(Incident, opened.incident_id))
    assert incident.status == "triggered" and not incident.unrouted and incident.next_escalation_at is None
    kinds = read(session, lambda: event_kinds(session, incident))
    assert kinds[:2] == ["triggered", "maintenance"]
    message = read(session, lambda: incident.events[1].message)
    assert message.startswith("In maintenance (db upgrade, until 2025-03-09 14:00 UTC)")
    assert read(session, lambda: session.get(Incident, recovered.incident_id).status) == "resolved"

    # The window ends: the worker's next cycle pages the still-open incident, once.
    after = read(session, lambda: window.ends_at) + timedelta(seconds=1)
    run_cycle(ctx, after)
    run_cycle(ctx, after + timedelta(seconds=5))
    assert _page_count(session, incident.id) >= 1
    kinds = read(session, lambda: event_kinds(session, incident))
    assert kinds[kinds.index("maintenance_ended") + 1] == "paged"
    assert kinds.count("paged") == 1
    assert read(session, lambda: session.get(MaintenanceHold, incident.id)) is None
    # The resolved one is never paged.
    assert _page_count(session, recovered.incident_id) == 0


def test_a_window_on_a_policy_holds_incidents_routed_to_it_and_ending_early_pages_at_once(session, make_ctx):
    world = make_world(session)
    window = _window(session, world, start=T0, hours=8, sources=False, policies=True)
    ctx = make_ctx()
    incident = open_incident(session, world.source, now=T0 + timedelta(minutes=1))
    session.commit()
    assert _page_count(session) == 0
    ended_at = T0 + timedelta(minutes=20)
    maintenance.end_window(session, window, now=ended_at)
    session.commit()
    assert read(session, lambda: window.state(ended_at)) == "over"
    run_cycle(ctx, ended_at + timedelta(seconds=1))
    assert _page_count(session, incident.id) >= 1
    with pytest.raises(Conflict):
        maintenance.end_window(session, window, now=ended_at + timedelta(minutes=1))


def test_an_acknowledged_incident_is_released_without_paging(session, make_ctx):
    from pagerpal_core.services.incidents import acknowledge_incident

    world = make_world(session)
    window = _window(session, world, start=T0, hours=1)
    incident = open_incident(session, world.source, now=T0 + timedelta(minutes=1))
    acknowledge_incident(session, incident, actor=world.ada, now=T0 + timedelta(minutes=2))
    session.commit()
    run_cycle(make_ctx(), read(session, lambda: window.ends_at) + timedelta(seconds=1))
    assert _page_count(session) == 0
    assert read(session, lambda: session.get(MaintenanceHold, incident.id)) is None


def test_overlapping_windows_hold_until_the_last_one_ends(session, make_ctx):
    world = make_world(session)
    first = _window(session, world, start=T0, hours=1)
    second = _window(session, world, start=T0 + timedelta(minutes=30), hours=2, sources=False, policies=True,
                     reason="network work")
    ctx = make_ctx()
    incident = open_incident(session, world.source, now=T0 + timedelta(minutes=40))
    session.commit()
    run_cycle(ctx, read(session, lambda: first.ends_at) + timedelta(seconds=1))
    assert _page_count(session) == 0  # the second window still covers it
    run_cycle(ctx, read(session, lambda: second.ends_at) + timedelta(seconds=1))
    assert _page_count(session, incident.id) >= 1


def test_deleting_a_window_releases_what_it_held(session, make_ctx):
    world = make_world(session)
    window = _window(session, world, start=T0, hours=3)
    incident = open_incident(session, world.source, now=T0 + timedelta(minutes=1))
    session.commit()
    maintenance.delete_window(session, window, now=T0 + timedelta(minutes=2))
    session.commit()
    run_cycle(make_ctx(), T0 + timedelta(minutes=3))
    assert _page_count(session, incident.id) >= 1
    assert "maintenance_ended" in read(session, lambda: event_kinds(session, incident))


def test_a_window_elsewhere_does_not_hold(session):
    world = make_world(session)
    other = make_source(session, None, name="other-source")
    maintenance.create_window(session, starts_at=T0, ends_at=T0 + timedelta(hours=1), reason="other",
                              alert_source_ids=[other.id], now=T0)
    incident = open_incident(session, world.source, now=T0 + timedelta(minutes=1))
    session.commit()
    assert _page_count(session, incident.id) >= 1
    # A window that has not started yet does not hold either.
    _window(session, world, start=T0 + timedelta(hours=1))
    later = open_incident(session, world.source, now=T0 + timedelta(minutes=2), external_id="disk-2")
    session.commit()
    assert _page_count(session, later.id) >= 1


@pytest.mark.parametrize(("changes", "field"), [
    ({"ends_at": "2025-03-09T11:00:00Z"}, "ends_at"),            # before starts_at
    ({"starts_at": "yesterday"}, "starts_at"),                    # not ISO-8601
    ({"alert_source_ids": [999999]}, "alert_source_ids"),        # unknown source
    ({"policy_ids": [999999]}, "policy_ids"),                    # unknown policy
    ({"alert_source_ids": None, "policy_ids": None}, "alert_source_ids"),  # covers nothing
    ({"ends_at": "2027-03-09T12:00:00Z"}, "ends_at"),            # longer than a year
    ({"reason": " "}, "reason"),
    ({"alert_source_ids": "1"}, "alert_source_ids"),
])
def test_bad_windows_are_refused_naming_the_field(session, changes, field):
    world = make_world(session)
    values = {"starts_at": "2025-03-09T12:00:00Z", "ends_at": "2025-03-09T14:00:00Z", "reason": "upgrade",
              "alert_source_ids": [world.source.id], "policy_ids": None, **changes}
    with pytest.raises(Invalid) as caught:
        maintenance.create_window(session, **values, now=T0)
    assert field in caught.value.fields


# --- the API -----------------------------------------------------------------------------------

def _api_world(app):
    from pagerpal_web.extensions import db

    with app.app_context():
        world = make_world(db.session)
        db.session.commit()
        return world.source.id, world.policy.id


def test_maintenance_api_create_list_end_delete(app, client, accounts):
    from pagerpal_core.timeutil import utcnow

    source_id, policy_id = _api_world(app)
    admin = accounts["admin"]
    start = utcnow().replace(microsecond=0) - timedelta(minutes=1)
    body = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
            "reason": "db upgrade", "alert_source_ids": [source_id], "policy_ids": [policy_id]}
    # Responders and viewers may read but not create.
    assert client.post("/api/v1/maintenance-windows", json=body, headers=accounts["responder"]).status_code == 403
    response = client.post("/api/v1/maintenance-windows", json=body, headers=admin)
    assert response.status_code == 201, response.json
    window = response.json
    assert window["state"] == "active" and window["alert_source_ids"] == [source_id]
    assert window["policy_ids"] == [policy_id] and window["ended_at"] is None
    assert response.headers["Location"].endswith(f"/api/v1/maintenance-windows/{window['id']}")
    listed = client.get("/api/v1/maintenance-windows", headers=accounts["viewer"]).json["items"]
    assert [w["id"] for w in listed] == [window["id"]]
    assert client.get(f"/api/v1/maintenance-windows/{window['id']}", headers=accounts["viewer"]).json == window

    ended = client.post(f"/api/v1/maintenance-windows/{window['id']}/end", headers=admin)
    assert ended.status_code == 200 and ended.json["state"] == "over" and ended.json["ended_at"]
    again = client.post(f"/api/v1/maintenance-windows/{window['id']}/end", headers=admin)
    assert again.status_code == 409 and again.json["error"]["code"] == "conflict"
    assert client.delete(f"/api/v1/maintenance-windows/{window['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/maintenance-windows/{window['id']}", headers=admin).status_code == 404

    with app.app_context():
        from pagerpal_core.models.audit import AuditEvent
        from pagerpal_web.extensions import db

        actions = list(db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.object_type == "maintenance_window").order_by(AuditEvent.id)))
    assert actions == ["maintenance_window.created", "maintenance_window.ended", "maintenance_window.deleted"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
    ({"starts_at": 5}, "starts_at"),
    ({"alert_source_ids": [424242]}, "alert_source_ids"),
    ({"policy_ids": [424242]}, "policy_ids"),
    ({"alert_source_ids": "all"}, "alert_source_ids"),
    ({"colour": "red"}, "colour"),
])
def test_maintenance_api_bad_input_is_a_422_naming_the_field_and_writes_nothing(app, client, admin, changes, field):
    from pagerpal_core.models.maintenance import MaintenanceWindow
    from pagerpal_web.extensions import db

    source_id, _ = _api_world(app)
    body = {"starts_at": "2099-01-01T00:00:00Z", "ends_at": "2099-01-01T02:00:00Z", "reason": "upgrade",
            "alert_source_ids": [source_id], **changes}
    response = client.post("/api/v1/maintenance-windows", json=body, headers=admin)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["fields"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(MaintenanceWindow)) == 0


# --- the UI ------------------------------------------------------------------------------------

def _text(response) -> str:
    import html
    import re

    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))))


def test_maintenance_page_creates_a_window_shown_on_the_dashboard_and_incident_page(app):
    from pagerpal_core.models.maintenance import MaintenanceWindow
    from pagerpal_core.timeutil import utcnow
    from pagerpal_web.extensions import db
    from tests.conftest import csrf_token_from
    from tests.factories import make_user
    from tests.web.test_ui_pages import signed_in

    with app.app_context():
        world = make_world(db.session)
        admin = make_user(db.session, role="admin", name="Admin")
        viewer = make_user(db.session, role="viewer", name="Viewer")
        db.session.commit()
        source_id, admin_email, viewer_email = world.source.id, admin.email, viewer.email
    client = signed_in(app, admin_email)
    page = client.get("/maintenance")
    assert page.status_code == 200 and "No maintenance windows." in _text(page)
    now = utcnow()
    form = {"csrf_token": csrf_token_from(page.get_data(as_text=True)), "reason": "db upgrade",
            "starts_at": (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"), "alert_source_ids": str(source_id)}
    # Bad input re-renders with the field's error and writes nothing.
    bad = client.post("/maintenance", data={**form, "ends_at": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")})
    assert bad.status_code == 422 and "must be after starts_at" in _text(bad)
    created = client.post("/maintenance", data=form, follow_redirects=True)
    assert created.status_code == 200 and "Maintenance window created." in _text(created)
    assert "db upgrade" in _text(created) and "active" in _text(created)

    dashboard = _text(client.get("/dashboard"))
    assert "In maintenance until" in dashboard and "(db upgrade)" in dashboard and "source grafana-prod" in dashboard

    with app.app_context():
        incident = open_incident(db.session, db.session.get(type(world.source), source_id), now=now)
        db.session.commit()
        incident_id = incident.id
    detail = _text(signed_in(app, viewer_email).get(f"/incidents/{incident_id}"))
    assert "In maintenance (db upgrade, until" in detail
    assert "Why was this paged?" in detail and "Nobody is paged: in maintenance (db upgrade" in detail
    # Viewers cannot create or end windows.
    viewer_page = signed_in(app, viewer_email).get("/maintenance")
    assert "New maintenance window" not in _text(viewer_page)

    with app.app_context():
        window_id = db.session.scalars(select(MaintenanceWindow.id)).one()
    page = client.get("/maintenance")
    ended = client.post(f"/maintenance/{window_id}/end", data={"csrf_token": csrf_token_from(
        page.get_data(as_text=True))}, follow_redirects=True)
    assert "Maintenance window ended" in _text(ended)
    assert "In maintenance until" not in _text(client.get("/dashboard"))
