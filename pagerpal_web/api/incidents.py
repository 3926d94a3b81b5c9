"""/api/v1/incidents: list with filters and sorting, detail with timeline, and the actions.

Actions (responder role): acknowledge, resolve, reopen, escalate, reassign, notes. Each
takes an optional `acting_as` user id (default: the caller), so a dispatcher can record
the acknowledge of a responder who has no login; naming a viewer or an inactive user is
refused (403). The caller is stored on the timeline event too (`recorded_by_id`).

Two acknowledges of one incident at the same moment: the incident row is locked by the
service, so exactly one succeeds (200) and the other gets 409 with the current status.
"""

from flask import jsonify, request

from pagerpal_core.errors import NotFound
from pagerpal_core.models import Incident, IncidentEvent, User
from pagerpal_core.services import incidents as svc
from pagerpal_core.services.incident_queries import (
    PageRequest,
    incident_notifications,
    parse_incident_filters,
    search_incidents,
)
from pagerpal_core.services.users import resolve_acting_user
from pagerpal_core.timeutil import utcnow
from pagerpal_web.api import bp
from pagerpal_web.api.common import (
    body_fields,
    check_types,
    created,
    current_api_user,
    page_args,
    page_response,
    settings,
    ts,
)
from pagerpal_web.api.notifications import serialize_notification
from pagerpal_web.api.users import user_ref
from pagerpal_web.auth import requires_role
from pagerpal_web.extensions import db


def serialize_incident(incident: Incident) -> dict:
    """An incident as JSON (the list's and the detail's common fields)."""
    return {
        "id": incident.id, "title": incident.title, "description": incident.description,
        "severity": incident.severity, "status": incident.status,
        "alert_source_id": incident.alert_source_id, "external_id": incident.external_id,
        "team_id": incident.team_id, "policy_id": incident.policy_id,
        "assignee": user_ref(incident.assignee), "current_level": incident.current_level,
        "escalation_round": incident.escalation_round, "next_escalation_at": ts(incident.next_escalation_at),
        "unrouted": incident.unrouted, "paging_state": incident.paging_state,
        "snoozed_until": ts(incident.snoozed_until), "snoozed_by_id": incident.snoozed_by_id,
        "retrigger_at": ts(incident.retrigger_at), "occurrence_count": incident.occurrence_count,
        "details": incident.details or {}, "links": incident.links or [],
        "created_at": ts(incident.created_at), "updated_at": ts(incident.updated_at),
        "last_seen_at": ts(incident.last_seen_at),
        "acknowledged_at": ts(incident.acknowledged_at), "acknowledged_by_id": incident.acknowledged_by_id,
        "resolved_at": ts(incident.resolved_at), "resolved_by_id": incident.resolved_by_id,
    }


def serialize_event(event: IncidentEvent) -> dict:
    """A timeline event as JSON with who acted and who recorded it."""
    return {"id": event.id, "kind": event.kind, "message": event.message, "actor": event.actor_label,
            "actor_user_id": event.actor_user_id, "actor_source_id": event.actor_source_id,
            "recorded_by_id": event.recorded_by_id,
            "detail": event.detail or {}, "created_at": ts(event.created_at)}


def serialize_detail(incident: Incident) -> dict:
    """An incident as JSON with its timeline and notifications."""
    notifications = incident_notifications(db.session, incident)
    return {**serialize_incident(incident), "timeline": [serialize_event(e) for e in incident.events],
            "notifications": [serialize_notification(n) for n in notifications]}


def get_incident(incident_id: int) -> Incident:
    """The incident with `incident_id`, or NotFound (404)."""
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} not found")
    return incident


@bp.get("/incidents")
def list_incidents():
    """Incidents filtered by status, severity, team, source, assignee, since/until (created) and text.

    Filters as core's `parse_incident_filters` reads them (the UI's list uses the same):
    `status` also takes "open" and "all", `q` is another name for `text`. `sort` is one of
    created_at, updated_at, last_seen_at, severity, status, each with an optional leading
    "-" (descending); default -created_at. Pages are keyset pages: `after` is the id of the
    last incident seen, so inserts never shift or repeat rows.
    """
    limit, after = page_args()
    filters = parse_incident_filters(request.args)
    result = search_incidents(db.session, filters, PageRequest(
        limit=limit, after=after, sort=request.args.get("sort", "-created_at")))
    # page_response wants one row past the page when there is more; its id is never used.
    rows = result.items + ([None] if result.has_more else [])
    return jsonify(page_response(rows, limit, "api.list_incidents", serialize_incident))


@bp.get("/incidents/<int:incident_id>")
def read_incident(incident_id: int):
    """One incident with its full timeline and notifications."""
    return jsonify(serialize_detail(get_incident(incident_id)))


def acting_user(data: dict) -> User:
    """The user an action is recorded for: `acting_as` or the caller, by core's one rule (the UI's too)."""
    return resolve_acting_user(db.session, current_api_user(), data.get("acting_as"))


def _action_body(*fields: str, needed=()) -> dict:
    data = body_fields({"acting_as", *fields}, required=False, needed=needed)
    check_types(data, acting_as="integer?")
    return data


@bp.post("/incidents/<int:incident_id>/acknowledge")
@requires_role("responder")
def acknowledge(incident_id: int):
    """Acknowledge a triggered incident: paging stops (409 when it is not triggered)."""
    incident = get_incident(incident_id)
    data = _action_body()
    incident = svc.acknowledge_incident(db.session, incident, actor=acting_user(data), now=utcnow())
    db.session.commit()
    return jsonify(serialize_incident(incident))


@bp.post("/incidents/<int:incident_id>/snooze")
@requires_role("responder")
def snooze(incident_id: int):
    """Acknowledge until `minutes` (1 to 1440) from now; then it pages level 1 again unless resolved.

    A triggered or acknowledged incident can be snoozed (again); a resolved one is a 409.
    """
    incident = get_incident(incident_id)
    data = _action_body("minutes", needed=("minutes",))
    check_types(data, minutes="integer")
    incident = svc.snooze_incident(db.session, incident, minutes=data["minutes"], actor=acting_user(data),
                                   now=utcnow())
    db.session.commit()
    return jsonify(serialize_incident(incident))


@bp.post("/incidents/<int:incident_id>/resolve")
@requires_role("responder")
def resolve(incident_id: int):
    """Resolve an open incident, optionally with a note (409 when already resolved)."""
    incident = get_incident(incident_id)
    data = _action_body("note")
    check_types(data, note="string?")
    incident = svc.resolve_incident(db.session, incident, actor=acting_user(data), now=utcnow(),
                                    note=data.get("note"))
    db.session.commit()
    return jsonify(serialize_incident(incident))


@bp.post("/incidents/<int:incident_id>/reopen")
@requires_role("responder")
def reopen(incident_id: int):
    """Back to triggered; paging restarts at level 1 (409 when already triggered)."""
    incident = get_incident(incident_id)
    data = _action_body()
    incident = svc.reopen_incident(db.session, incident, actor=acting_user(data), now=utcnow(),
                                   base_url=settings().base_url)
    db.session.commit()
    return jsonify(serialize_incident(incident))


@bp.post("/incidents/<int:incident_id>/escalate")
@requires_role("responder")
def escalate(incident_id: int):
    """Page the next level now (409 when resolved or there is no policy to escalate to)."""
    incident = get_incident(incident_id)
    data = _action_body()
    incident = svc.escalate_incident(db.session, incident, actor=acting_user(data), now=utcnow(),
                                     base_url=settings().base_url)
    db.session.commit()
    return jsonify(serialize_incident(incident))


@bp.post("/incidents/<int:incident_id>/reassign")
@requires_role("responder")
def reassign(incident_id: int):
    """Assign the incident to another active user (`user_id`)."""
    incident = get_incident(incident_id)
    data = _action_body("user_id", needed=("user_id",))
    incident = svc.reassign_incident(db.session, incident, data["user_id"], actor=acting_user(data),
                                     now=utcnow(), base_url=settings().base_url)
    db.session.commit()
    return jsonify(serialize_incident(incident))


@bp.get("/incidents/<int:incident_id>/notes")
def list_notes(incident_id: int):
    """The incident's notes (timeline events of kind `note`)."""
    incident = get_incident(incident_id)
    return jsonify(items=[serialize_event(e) for e in incident.events if e.kind == "note"])


@bp.post("/incidents/<int:incident_id>/notes")
@requires_role("responder")
def add_note(incident_id: int):
    """Add a note (`text`) to the timeline; returns the new event."""
    incident = get_incident(incident_id)
    data = _action_body("text", needed=("text",))
    event = svc.add_note(db.session, incident, data["text"], actor=acting_user(data), now=utcnow())
    db.session.commit()
    return created(serialize_event(event), "api.list_notes", incident_id=incident.id)
