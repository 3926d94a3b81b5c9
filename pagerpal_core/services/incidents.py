"""Incident lifecycle: trigger, acknowledge, resolve, reopen, escalate, reassign, note.

Each function validates the transition, changes the incident, and writes its timeline
event in the caller's transaction (the caller commits).

Concurrency: every transition first locks the incident row and re-reads it
(`lock_incident`: SELECT ... FOR UPDATE on PostgreSQL; on SQLite the transaction already
holds the database's write lock from BEGIN IMMEDIATE). The check ("is it still
triggered?") therefore sees the latest committed state: two simultaneous acknowledges
give one acknowledge and one Conflict, and an escalation step that claims the incident
after an acknowledge committed finds it no longer triggered and pages nobody.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagerpal_core.errors import Conflict, Invalid
from pagerpal_core.models import AlertSource, Incident, User
from pagerpal_core.services import escalation
from pagerpal_core.services.config_fields import lookup_active_user, text_problem
from pagerpal_core.services.paging import cancel_pending_pages
from pagerpal_core.services.timeline import record_event

Actor = User | AlertSource | str | None
MAX_NOTE_LENGTH = 10_000


def lock_incident(session: Session, incident: Incident) -> Incident:
    """Lock the incident's row for this transaction and refresh it from the database.

    Pending changes are flushed first so the refresh cannot discard them.
    """
    session.flush()
    return session.scalars(
        select(Incident).where(Incident.id == incident.id).with_for_update()
        .execution_options(populate_existing=True)).one()


def trigger_incident(session: Session, incident: Incident, *, actor: Actor, now: datetime, base_url: str,
                     detail: dict | None = None) -> Incident:
    """Start paging for a newly inserted (flushed) incident.

    Records `triggered`, assigns the policy (the incident's own, else its alert source's)
    and pages level 1 — or the first level that reaches someone — setting the next
    escalation time. An incident that reaches nobody is flagged `unrouted`.
    """
    record_event(session, incident, "triggered", f"Incident opened: {incident.title}",
                 actor=actor, detail=detail, now=now)
    policy = escalation.incident_policy(session, incident)
    if policy is not None:
        incident.policy_id = policy.id
        if incident.team_id is None:
            incident.team_id = policy.team_id
    session.flush()
    escalation.start_escalation(session, incident, now=now, base_url=base_url, actor=actor)
    return incident


def acknowledge_incident(session: Session, incident: Incident, *, actor: Actor, now: datetime) -> Incident:
    """Acknowledge a triggered incident: escalation stops and unsent pages are cancelled.

    Acknowledging an acknowledged or resolved incident is a Conflict.
    """
    incident = lock_incident(session, incident)
    if incident.status != "triggered":
        raise Conflict(f"incident {incident.id} is {incident.status}; only a triggered incident can be "
                       "acknowledged", detail={"status": incident.status})
    incident.status = "acknowledged"
    incident.acknowledged_at = now
    incident.acknowledged_by_id = actor.id if isinstance(actor, User) else None
    if isinstance(actor, User):
        incident.assignee_id = actor.id
    incident.next_escalation_at = None
    incident.updated_at = now
    session.flush()
    cancelled = cancel_pending_pages(session, incident, now=now)
    record_event(session, incident, "acknowledged", "Acknowledged" + _cancelled_note(cancelled),
                 actor=actor, detail={"cancelled_notifications": cancelled}, now=now)
    return incident


def resolve_incident(session: Session, incident: Incident, *, actor: Actor, now: datetime,
                     note: str | None = None) -> Incident:
    """Resolve an open incident: escalation stops, unsent pages are cancelled.

    Resolving a resolved incident is a Conflict.
    """
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_LENGTH):
        raise Invalid("invalid note",
                      fields={"note": f"must be text of at most {MAX_NOTE_LENGTH} characters"})
    if note is not None and text_problem(note):
        raise Invalid("invalid note", fields={"note": text_problem(note)})
    incident = lock_incident(session, incident)
    if incident.status == "resolved":
        raise Conflict(f"incident {incident.id} is already resolved", detail={"status": incident.status})
    incident.status = "resolved"
    incident.resolved_at = now
    incident.resolved_by_id = actor.id if isinstance(actor, User) else None
    incident.next_escalation_at = None
    incident.updated_at = now
    session.flush()
    cancelled = cancel_pending_pages(session, incident, now=now)
    note = note.strip() if note else None
    detail = {"cancelled_notifications": cancelled}
    if note:
        detail["note"] = note
    record_event(session, incident, "resolved", ("Resolved" + (f": {note}" if note else ""))
                 + _cancelled_note(cancelled), actor=actor, detail=detail, now=now)
    return incident


def reopen_incident(session: Session, incident: Incident, *, actor: Actor, now: datetime,
                    base_url: str) -> Incident:
    """Send an acknowledged or resolved incident back to triggered and restart paging at level 1.

    Reopening a triggered incident is a Conflict; so is reopening a resolved one while a
    newer open incident exists for the same alert (one open incident per alert).
    """
    incident = lock_incident(session, incident)
    if incident.status == "triggered":
        raise Conflict(f"incident {incident.id} is already triggered", detail={"status": incident.status})
    previous = incident.status
    try:
        with session.begin_nested():
            incident.status = "triggered"
            session.flush()
    except IntegrityError:
        incident.status = previous
        raise Conflict(f"incident {incident.id} cannot be reopened: a newer open incident exists for the "
                       "same alert") from None
    incident.acknowledged_at = incident.acknowledged_by_id = None
    incident.resolved_at = incident.resolved_by_id = None
    incident.updated_at = now
    record_event(session, incident, "reopened", f"Reopened (was {previous}); paging restarts at level 1",
                 actor=actor, detail={"previous_status": previous}, now=now)
    escalation.start_escalation(session, incident, now=now, base_url=base_url, actor=actor)
    return incident


def escalate_incident(session: Session, incident: Incident, *, actor: Actor, now: datetime,
                      base_url: str) -> Incident:
    """Manual escalation: page the next level now.

    An acknowledged incident goes back to triggered (escalation resumes). Past the last
    level it starts again from the first. A resolved incident is a Conflict.
    """
    incident = lock_incident(session, incident)
    if incident.status == "resolved":
        raise Conflict(f"incident {incident.id} is resolved; reopen it instead",
                       detail={"status": "resolved"})
    levels = escalation.policy_levels(session, incident)
    if not levels:
        raise Conflict(f"incident {incident.id} has no escalation policy with levels to escalate to")
    previous_status, previous_level = incident.status, incident.current_level
    incident.status = "triggered"
    incident.acknowledged_at = incident.acknowledged_by_id = None
    # A new paging pass: its pages get their own dedup keys even when a level repeats.
    incident.page_generation = (incident.page_generation or 0) + 1
    index = escalation.next_level_index(levels, previous_level)
    if index >= len(levels):
        index = 0
        incident.escalation_round += 1
    incident.updated_at = now
    record_event(session, incident, "escalated",
                 f"Escalated by hand from level {previous_level} to level {levels[index].level_number}"
                 + (" (was acknowledged)" if previous_status == "acknowledged" else ""),
                 actor=actor, detail={"from_level": previous_level, "to_level": levels[index].level_number,
                                      "manual": True, "previous_status": previous_status}, now=now)
    escalation.walk_levels(session, incident, levels, index, now=now, base_url=base_url, actor=actor)
    return incident


def reassign_incident(session: Session, incident: Incident, user: User | int, *, actor: Actor,
                      now: datetime) -> Incident:
    """Assign an open incident to an active user. Resolved incidents cannot be reassigned."""
    errors: dict = {}
    user = lookup_active_user(session, user, "user_id", errors)
    if errors:
        raise Invalid("invalid assignee", fields=errors)
    incident = lock_incident(session, incident)
    if incident.status == "resolved":
        raise Conflict(f"incident {incident.id} is resolved", detail={"status": "resolved"})
    previous = incident.assignee_id
    if previous == user.id:
        raise Conflict(f"incident {incident.id} is already assigned to {user.name}")
    incident.assignee_id = user.id
    incident.updated_at = now
    session.flush()
    record_event(session, incident, "reassigned", f"Reassigned to {user.name}", actor=actor,
                 detail={"from_user_id": previous, "to_user_id": user.id}, now=now)
    return incident


def add_note(session: Session, incident: Incident, text: str, *, actor: Actor, now: datetime):
    """Add a note to the incident's timeline (any status); returns the event."""
    if not isinstance(text, str) or not text.strip():
        raise Invalid("invalid note", fields={"text": "is required"})
    if len(text) > MAX_NOTE_LENGTH:
        raise Invalid("invalid note", fields={"text": f"must be at most {MAX_NOTE_LENGTH} characters"})
    if text_problem(text):
        raise Invalid("invalid note", fields={"text": text_problem(text)})
    return record_event(session, incident, "note", text.strip(), actor=actor, now=now)


def _cancelled_note(count: int) -> str:
    if not count:
        return ""
    return f" ({count} unsent page{'s' if count != 1 else ''} cancelled)"
