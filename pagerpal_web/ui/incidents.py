"""/incidents: the list with filters, one incident's triage page, and its actions.

Every action form names who acts ("Acting as", default the signed-in user), so a
responder without a login — reading the page from an SMS link on someone's phone — is
recorded on the timeline as the actor.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select

from pagerpal_core.errors import DomainError, NotFound
from pagerpal_core.models import AlertSource, Incident, IncidentEvent, Notification, User
from pagerpal_core.models.incidents import SEVERITIES, STATUSES
from pagerpal_core.models.notifications import RETRYABLE_BY_HAND
from pagerpal_core.security import clip
from pagerpal_core.services import escalation
from pagerpal_core.services import incidents as incident_service
from pagerpal_core.services.notifications import retry_notification
from pagerpal_core.services.users import resolve_acting_user
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import ACTOR_ROLES, active_user_choices, actor_choices, apply_errors, settings
from pagerpal_web.ui.forms import ActingAsForm, NoteForm, ReassignForm, ResolveForm

PAGE_SIZE = 50
STATUS_FILTERS = ("open", *STATUSES, "all")
ERROR_CLIP = 300


def _filters() -> dict:
    args = request.args
    status = args.get("status", "open")
    return {
        "status": status if status in STATUS_FILTERS else "open",
        "severity": args.get("severity") if args.get("severity") in SEVERITIES else "",
        "source": args.get("source", type=int),
        "assignee": args.get("assignee", type=int),
        "q": (args.get("q") or "").strip()[:200],
    }


@bp.get("/incidents")
@login_required_role("viewer")
def incidents():
    """Incidents newest first, filtered by status, severity, source, assignee and title text."""
    filters = _filters()
    query = select(Incident)
    if filters["status"] == "open":
        query = query.where(Incident.status.in_(("triggered", "acknowledged")))
    elif filters["status"] != "all":
        query = query.where(Incident.status == filters["status"])
    if filters["severity"]:
        query = query.where(Incident.severity == filters["severity"])
    if filters["source"]:
        query = query.where(Incident.alert_source_id == filters["source"])
    if filters["assignee"]:
        query = query.where(Incident.assignee_id == filters["assignee"])
    if filters["q"]:
        pattern = "%" + filters["q"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Incident.title.ilike(pattern, escape="\\"),
                                Incident.external_id.ilike(pattern, escape="\\")))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, request.args.get("page", 1, type=int)), pages)
    rows = db.session.scalars(query.order_by(Incident.created_at.desc(), Incident.id.desc())
                              .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    sources = db.session.scalars(select(AlertSource).order_by(AlertSource.name)).all()
    people = db.session.scalars(select(User).order_by(User.name)).all()
    args = {k: v for k, v in filters.items() if v}
    return render_template("incidents.html", incidents=rows, filters=filters, total=total, page=page,
                           pages=pages, sources=sources, people=people, severities=SEVERITIES,
                           statuses=STATUS_FILTERS, page_args=args, now=utcnow())


def _get_incident(incident_id: int) -> Incident:
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} not found")
    return incident


def _action_forms(**given) -> dict:
    """The page's action forms (prefixed, so their fields have distinct ids), choices filled."""
    actors = actor_choices()
    default = current_user.id if current_user.role in ACTOR_ROLES else None
    forms = {
        "ack": given.get("ack") or ActingAsForm(prefix="ack"),
        "resolve": given.get("resolve") or ResolveForm(prefix="resolve"),
        "reopen": given.get("reopen") or ActingAsForm(prefix="reopen"),
        "escalate": given.get("escalate") or ActingAsForm(prefix="escalate"),
        "reassign": given.get("reassign") or ReassignForm(prefix="reassign"),
        "note": given.get("note") or NoteForm(prefix="note"),
        "retry": given.get("retry") or ActingAsForm(prefix="retry"),
    }
    for name, form in forms.items():
        form.acting_as.choices = actors
        if name not in given:
            form.acting_as.data = default
    forms["reassign"].user_id.choices = active_user_choices()
    return forms


def _current_recipients(incident: Incident) -> list:
    """Who the incident's current level pages right now (for "on call" on the page)."""
    return escalation.paging_now(db.session, incident, utcnow())


def _detail_page(incident: Incident, status: int = 200, **forms):
    events = db.session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)
                                .order_by(IncidentEvent.id.desc())).all()
    notifications = db.session.scalars(select(Notification).where(Notification.incident_id == incident.id)
                                       .order_by(Notification.id.desc())).all()
    users = {u.id: u for u in db.session.scalars(select(User))}
    return render_template(
        "incident_detail.html", incident=incident, events=events, notifications=notifications, users=users,
        forms=_action_forms(**forms), recipients=_current_recipients(incident), retryable=RETRYABLE_BY_HAND,
        error_clip=lambda text: clip(text, ERROR_CLIP), now=utcnow()), status


@bp.get("/incidents/<int:incident_id>")
@login_required_role("viewer")
def incident_detail(incident_id: int):
    """Triage: state, who is paged, timeline, delivery log and (for responders) the actions."""
    return _detail_page(_get_incident(incident_id))


def _acting_user(form) -> User:
    """The user chosen under "Acting as", by core's one rule (the API's `acting_as` uses it too)."""
    try:
        return resolve_acting_user(db.session, current_user._get_current_object(), form.acting_as.data)
    except DomainError as exc:
        form.acting_as.errors = list(form.acting_as.errors) + [exc.fields.get("acting_as", exc.message)]
        return None


def _run_action(incident_id: int, name: str, form_class, action, done: str):
    """Validate the named form, call `action(incident, actor, form)`, commit, redirect back."""
    incident = _get_incident(incident_id)
    form = form_class(prefix=name)
    form.acting_as.choices = actor_choices()
    if name == "reassign":
        form.user_id.choices = active_user_choices()
    actor = _acting_user(form) if form.validate_on_submit() else None
    if actor is None:
        return _detail_page(incident, 422, **{name: form})
    try:
        action(incident, actor, form)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if exc.fields:
            apply_errors(form, exc, aliases={"user_id": "user_id", "text": "text", "note": "note"})
            return _detail_page(_get_incident(incident_id), 422, **{name: form})
        flash(exc.message, "error")
        return redirect(url_for("ui.incident_detail", incident_id=incident_id), code=303)
    flash(f"{done} (as {actor.name}).", "success")
    return redirect(url_for("ui.incident_detail", incident_id=incident_id), code=303)


@bp.post("/incidents/<int:incident_id>/acknowledge")
@login_required_role("responder")
def incident_acknowledge(incident_id: int):
    """Acknowledge: escalation stops; unsent pages are cancelled."""
    return _run_action(incident_id, "ack", ActingAsForm, lambda incident, actor, form:
                       incident_service.acknowledge_incident(db.session, incident, actor=actor, now=utcnow()),
                       "Acknowledged")


@bp.post("/incidents/<int:incident_id>/resolve")
@login_required_role("responder")
def incident_resolve(incident_id: int):
    """Resolve, with an optional note on the timeline."""
    return _run_action(incident_id, "resolve", ResolveForm, lambda incident, actor, form:
                       incident_service.resolve_incident(db.session, incident, actor=actor, now=utcnow(),
                                                         note=(form.note.data or "").strip() or None),
                       "Resolved")


@bp.post("/incidents/<int:incident_id>/reopen")
@login_required_role("responder")
def incident_reopen(incident_id: int):
    """Reopen: back to triggered, paging restarts at level 1."""
    return _run_action(incident_id, "reopen", ActingAsForm, lambda incident, actor, form:
                       incident_service.reopen_incident(db.session, incident, actor=actor, now=utcnow(),
                                                        base_url=settings().base_url),
                       "Reopened")


@bp.post("/incidents/<int:incident_id>/escalate")
@login_required_role("responder")
def incident_escalate(incident_id: int):
    """Escalate by hand: page the next level now."""
    return _run_action(incident_id, "escalate", ActingAsForm, lambda incident, actor, form:
                       incident_service.escalate_incident(db.session, incident, actor=actor, now=utcnow(),
                                                          base_url=settings().base_url),
                       "Escalated")


@bp.post("/incidents/<int:incident_id>/reassign")
@login_required_role("responder")
def incident_reassign(incident_id: int):
    """Assign the incident to another active user."""
    return _run_action(incident_id, "reassign", ReassignForm, lambda incident, actor, form:
                       incident_service.reassign_incident(db.session, incident, form.user_id.data, actor=actor,
                                                          now=utcnow(), base_url=settings().base_url),
                       "Reassigned and paged")


@bp.post("/incidents/<int:incident_id>/notes")
@login_required_role("responder")
def incident_note(incident_id: int):
    """Add a note to the timeline."""
    return _run_action(incident_id, "note", NoteForm, lambda incident, actor, form:
                       incident_service.add_note(db.session, incident, form.text.data, actor=actor, now=utcnow()),
                       "Note added")


@bp.post("/incidents/<int:incident_id>/notifications/<int:notification_id>/retry")
@login_required_role("responder")
def incident_retry_notification(incident_id: int, notification_id: int):
    """Send a failed, exhausted or undeliverable page again."""
    def retry(incident, actor, form):
        notification = db.session.get(Notification, notification_id)
        if notification is None or notification.incident_id != incident.id:
            raise NotFound(f"notification {notification_id} not found on incident {incident.id}")
        retry_notification(db.session, notification, actor=actor, now=utcnow())
    return _run_action(incident_id, "retry", ActingAsForm, retry, "Notification queued again")
