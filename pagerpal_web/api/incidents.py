"""/api/v1/incidents: list with filters and sorting, detail with timeline, and the actions.

Actions (responder role): acknowledge, resolve, reopen, escalate, reassign, notes. Each
takes an optional `acting_as` user id (default: the caller), so a dispatcher can record
the acknowledge of a responder who has no login; naming a viewer or an inactive user is
refused (403). The caller is stored on the timeline event too (`recorded_by_id`).

Two acknowledges of one incident at the same moment: the incident row is locked by the
service, so exactly one succeeds (200) and the other gets 409 with the current status.
"""

from flask import jsonify, request
from sqlalchemy import and_, case, func, or_, select

from pagerpal_core.errors import Invalid, NotFound
from pagerpal_core.models import Incident, IncidentEvent, Notification, User
from pagerpal_core.models.incidents import SEVERITIES, STATUSES
from pagerpal_core.services import incidents as svc
from pagerpal_core.services.config_fields import raise_if
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
    query_instant,
    settings,
    text_problem,
    ts,
)
from pagerpal_web.api.notifications import serialize_notification
from pagerpal_web.api.users import user_ref
from pagerpal_web.auth import requires_role
from pagerpal_web.extensions import db

SEVERITY_RANK = case({s: i for i, s in enumerate(SEVERITIES)}, value=Incident.severity)  # critical = 0
STATUS_RANK = case({s: i for i, s in enumerate(STATUSES)}, value=Incident.status)
# Sort keys; "-" in front means descending. Ties break on id, so keyset pages stay stable.
SORTS = {"created_at": Incident.created_at, "updated_at": Incident.updated_at,
         "last_seen_at": Incident.last_seen_at, "severity": SEVERITY_RANK, "status": STATUS_RANK}
SORT_CHOICES = tuple(SORTS) + tuple("-" + s for s in SORTS)
MAX_TEXT_FILTER = 200


def serialize_incident(incident: Incident) -> dict:
    return {
        "id": incident.id, "title": incident.title, "description": incident.description,
        "severity": incident.severity, "status": incident.status,
        "alert_source_id": incident.alert_source_id, "external_id": incident.external_id,
        "team_id": incident.team_id, "policy_id": incident.policy_id,
        "assignee": user_ref(incident.assignee), "current_level": incident.current_level,
        "escalation_round": incident.escalation_round, "next_escalation_at": ts(incident.next_escalation_at),
        "unrouted": incident.unrouted, "occurrence_count": incident.occurrence_count,
        "details": incident.details or {}, "links": incident.links or [],
        "created_at": ts(incident.created_at), "updated_at": ts(incident.updated_at),
        "last_seen_at": ts(incident.last_seen_at),
        "acknowledged_at": ts(incident.acknowledged_at), "acknowledged_by_id": incident.acknowledged_by_id,
        "resolved_at": ts(incident.resolved_at), "resolved_by_id": incident.resolved_by_id,
    }


def serialize_event(event: IncidentEvent) -> dict:
    return {"id": event.id, "kind": event.kind, "message": event.message, "actor": event.actor_label,
            "actor_user_id": event.actor_user_id, "actor_source_id": event.actor_source_id,
            "recorded_by_id": event.recorded_by_id,
            "detail": event.detail or {}, "created_at": ts(event.created_at)}


def serialize_detail(incident: Incident) -> dict:
    notifications = db.session.scalars(select(Notification).where(Notification.incident_id == incident.id)
                                       .order_by(Notification.id))
    return {**serialize_incident(incident), "timeline": [serialize_event(e) for e in incident.events],
            "notifications": [serialize_notification(n) for n in notifications]}


def get_incident(incident_id: int) -> Incident:
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} not found")
    return incident


def _id_filter(name: str, errors: dict):
    raw = request.args.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        errors[name] = "must be an id (integer)"
        return None
    return int(raw)


def _choices_filter(name: str, choices: tuple, errors: dict) -> list | None:
    """`?name=a,b` as a list of allowed values."""
    raw = request.args.get(name)
    if raw is None:
        return None
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if not values or any(v not in choices for v in values):
        errors[name] = f"must be one or more (comma-separated) of {', '.join(choices)}"
        return None
    return values


@bp.get("/incidents")
def list_incidents():
    """Incidents filtered by status, severity, team, source, assignee, since/until (created) and text.

    `sort` is one of created_at, updated_at, last_seen_at, severity, status, each with an
    optional leading "-" (descending); default -created_at. Pages are keyset pages: `after`
    is the id of the last incident seen, so inserts never shift or repeat rows.
    """
    errors: dict = {}
    limit, after = page_args()
    statuses = _choices_filter("status", STATUSES, errors)
    severities = _choices_filter("severity", SEVERITIES, errors)
    team, source = _id_filter("team", errors), _id_filter("source", errors)
    assignee = _id_filter("assignee", errors)
    since, until = query_instant("since", errors), query_instant("until", errors)
    text = request.args.get("text")
    if text is not None and len(text) > MAX_TEXT_FILTER:
        errors["text"] = f"must be at most {MAX_TEXT_FILTER} characters"
    elif text is not None and text_problem(text):
        errors["text"] = text_problem(text)
    sort = request.args.get("sort", "-created_at")
    if sort not in SORT_CHOICES:
        errors["sort"] = f"must be one of {', '.join(SORT_CHOICES)}"
    raise_if(errors, "invalid filter")

    query = select(Incident)
    if statuses:
        query = query.where(Incident.status.in_(statuses))
    if severities:
        query = query.where(Incident.severity.in_(severities))
    if team is not None:
        query = query.where(Incident.team_id == team)
    if source is not None:
        query = query.where(Incident.alert_source_id == source)
    if assignee is not None:
        query = query.where(Incident.assignee_id == assignee)
    if since is not None:
        query = query.where(Incident.created_at >= since)
    if until is not None:
        query = query.where(Incident.created_at < until)
    if text and text.strip():
        # Plain substring match, case-insensitive on both backends; LIKE wildcards escaped.
        escaped = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        needle = f"%{escaped}%"
        query = query.where(or_(func.lower(Incident.title).like(needle, escape="\\"),
                                func.lower(Incident.external_id).like(needle, escape="\\")))

    descending = sort.startswith("-")
    key = SORTS[sort.lstrip("-")]
    if after is not None:
        anchor = db.session.execute(select(key.label("k"), Incident.id).where(Incident.id == after)).first()
        if anchor is None:
            raise Invalid("invalid pagination", fields={"after": f"no incident with id {after}"})
        beyond = (lambda col, value: col < value) if descending else (lambda col, value: col > value)
        query = query.where(or_(beyond(key, anchor.k), and_(key == anchor.k, beyond(Incident.id, after))))
    order = (key.desc(), Incident.id.desc()) if descending else (key.asc(), Incident.id.asc())
    rows = list(db.session.scalars(query.order_by(*order).limit(limit + 1)))
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
