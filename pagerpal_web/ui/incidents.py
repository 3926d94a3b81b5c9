"""/incidents: the list with filters and multi-select, one incident's triage page, and its actions.

Every action form on the incident page names who acts ("Acting as", default the signed-in
user), so a responder without a login — reading the page from an SMS link on someone's
phone — is recorded on the timeline as the actor. The one-tap Acknowledge on list rows and
the list's multi-select act as the signed-in user (POST /incidents/actions, CSRF-protected,
no JavaScript needed).

Searching goes through core's `parse_incident_filters`/`search_incidents`, the same as the
API, so one query string gives the same incidents on both.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import IntegerField
from wtforms.validators import InputRequired

from pagerpal_core.errors import DomainError, Invalid, NotFound
from pagerpal_core.models import Incident, Notification, User
from pagerpal_core.models.incidents import SEVERITIES
from pagerpal_core.models.notifications import RETRYABLE_BY_HAND
from pagerpal_core.security import clip
from pagerpal_core.services import escalation
from pagerpal_core.services import incidents as incident_service
from pagerpal_core.services.delivery_health import is_paging_failed
from pagerpal_core.services.incident_queries import (
    STATUS_CHOICES,
    IncidentFilters,
    IncidentPage,
    PageRequest,
    filter_options,
    incident_records,
    parse_incident_filters,
    search_incidents,
)
from pagerpal_core.services.notifications import retry_notification
from pagerpal_core.services.trace import trace_incident
from pagerpal_core.services.users import resolve_acting_user
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import ACTOR_ROLES, active_user_choices, actor_choices, apply_errors, settings
from pagerpal_web.ui.forms import ActingAsForm, ConfirmForm, NoteForm, ReassignForm, ResolveForm
from pagerpal_web.ui.login import safe_next

PAGE_SIZE = 50
ERROR_CLIP = 300
# The snooze buttons on the incident page: (minutes, label).
SNOOZE_CHOICES = ((30, "30 min"), (60, "1 h"), (240, "4 h"))
FILTER_KEYS = ("status", "severity", "source", "assignee", "q")


class SnoozeForm(ActingAsForm):
    """Snooze: the pressed button carries the minutes."""

    minutes = IntegerField("Snooze for (minutes)", validators=[InputRequired()])


@bp.get("/incidents")
@login_required_role("viewer")
def incidents():
    """Incidents newest first, filtered by status, severity, source, assignee and title text."""
    args = {key: request.args.get(key) for key in FILTER_KEYS if request.args.get(key) is not None}
    shown = {"status": args.get("status", "open"), "severity": args.get("severity", ""),
             "source": request.args.get("source", type=int), "assignee": request.args.get("assignee", type=int),
             "q": args.get("q", "")}
    status = 200
    try:
        filters = parse_incident_filters(args, default_status="open")
        result = search_incidents(db.session, filters, PageRequest(
            limit=PAGE_SIZE, number=request.args.get("page", 1, type=int)))
    except Invalid as exc:
        # A search no database can run (say a NUL in the text) answers with the reason, not a 500.
        for name, problem in (exc.fields or {}).items():
            flash(f"Search {name} {problem}.", "error")
        filters, result, status = IncidentFilters(), IncidentPage(items=[], has_more=False, total=0), 400
    sources, people = filter_options(db.session)
    page_args = {k: v for k, v in args.items() if v}
    return render_template("incidents.html", incidents=result.items, filters=shown, total=result.total,
                           page=result.number, pages=result.pages, sources=sources, people=people,
                           severities=SEVERITIES, statuses=STATUS_CHOICES, page_args=page_args,
                           now=utcnow()), status


@bp.post("/incidents/actions")
@login_required_role("responder")
def incident_bulk_action():
    """Acknowledge or resolve the chosen incidents as the signed-in user (a row's one-tap
    Acknowledge sends just its own id); then back to the list it came from."""
    back = safe_next(request.form.get("next") or url_for("ui.incidents"))
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; please try again.", "error")
        return redirect(back, code=303)
    raw_ids = request.form.getlist("incident_ids")
    ids = [int(i) for i in raw_ids if i.isdigit() and len(i) <= 10]
    if len(ids) != len(raw_ids):
        flash("Choose incidents from the list.", "error")
        return redirect(back, code=303)
    try:
        result = incident_service.act_on_incidents(db.session, ids, request.form.get("action", ""),
                                                   actor=current_user._get_current_object(), now=utcnow())
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash("; ".join(f"{problem}" for problem in (exc.fields or {}).values()) or exc.message, "error")
        return redirect(back, code=303)
    verb = "Acknowledged" if result.action == "acknowledge" else "Resolved"
    if result.done:
        flash(f"{verb} {', '.join(f'#{i}' for i in result.done)}.", "success")
    if result.skipped:
        flash("Skipped " + ", ".join(f"#{i} ({why})" for i, why in result.skipped.items()) + ".",
              "error" if not result.done else "warning")
    return redirect(back, code=303)


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
        "snooze": given.get("snooze") or SnoozeForm(prefix="snooze"),
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
    forms["reassign"].user_id.choices = active_user_choices(blank="choose…")
    return forms


def _detail_page(incident: Incident, status: int = 200, **forms):
    now = utcnow()
    records = incident_records(db.session, incident)
    return render_template(
        "incident_detail.html", incident=incident, events=records.events, notifications=records.notifications,
        users=records.users, forms=_action_forms(**forms), recipients=escalation.paging_now(db.session, incident, now),
        retryable=RETRYABLE_BY_HAND, snooze_choices=SNOOZE_CHOICES, error_clip=lambda text: clip(text, ERROR_CLIP),
        now=now, trace=trace_incident(db.session, incident),
        paging_failed=is_paging_failed(db.session, incident)), status


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
        form.user_id.choices = active_user_choices(blank="choose…")
    actor = _acting_user(form) if form.validate_on_submit() else None
    if actor is None:
        return _detail_page(incident, 422, **{name: form})
    try:
        action(incident, actor, form)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if exc.fields:
            apply_errors(form, exc, aliases={"user_id": "user_id", "text": "text", "note": "note",
                                             "minutes": "minutes"})
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


@bp.post("/incidents/<int:incident_id>/snooze")
@login_required_role("responder")
def incident_snooze(incident_id: int):
    """Snooze: acknowledged now, paged again from level 1 when the snooze ends unless resolved."""
    return _run_action(incident_id, "snooze", SnoozeForm, lambda incident, actor, form:
                       incident_service.snooze_incident(db.session, incident, minutes=form.minutes.data,
                                                        actor=actor, now=utcnow()),
                       "Snoozed")


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
