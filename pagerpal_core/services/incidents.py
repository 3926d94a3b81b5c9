"""Incident lifecycle: trigger, acknowledge, snooze, resolve, reopen, escalate, reassign, note.

Each function validates the transition, changes the incident, and writes its timeline
event in the caller's transaction (the caller commits). Actions taken outside the UI and
API name their channel with `via` ("SMS link", "SMS reply", ...): the timeline says
"Acknowledged via SMS reply" and the event's detail keeps `via`.

Snooze is an acknowledgement with an end: at `snoozed_until` the worker's escalation step
sends the incident back to triggered and pages level 1 again (as it does when a policy's
`ack_timeout_minutes` passes after an acknowledge). Both set `retrigger_at`.

Concurrency: every transition first locks the incident row and re-reads it
(`lock_incident`: SELECT ... FOR UPDATE on PostgreSQL; on SQLite the transaction already
holds the database's write lock from BEGIN IMMEDIATE). The check ("is it still
triggered?") therefore sees the latest committed state: two simultaneous acknowledges
give one acknowledge and one Conflict, and an escalation step that claims the incident
after an acknowledge committed finds it no longer triggered and pages nobody.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagerpal_core.errors import Conflict, Invalid
from pagerpal_core.models import AlertSource, Incident, User
from pagerpal_core.services import escalation
from pagerpal_core.services.paging import cancel_pending_pages, page_users
from pagerpal_core.services.timeline import record_event
from pagerpal_core.services.validation import lookup_active_user, text_problem

Actor = User | AlertSource | str | None
MAX_NOTE_LENGTH = 10_000
MIN_SNOOZE_MINUTES, MAX_SNOOZE_MINUTES = 1, 24 * 60
# Bulk actions from the incident list act on at most this many incidents per request.
MAX_BULK = 200
BULK_ACTIONS = ("acknowledge", "resolve")


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
    record_event(session, incident, "triggered", opened_message(incident.title), actor=actor, detail=detail,
                 now=now)
    policy = escalation.incident_policy(session, incident)
    if policy is not None:
        incident.policy_id = policy.id
        if incident.team_id is None:
            incident.team_id = policy.team_id
    escalation.start_escalation(session, incident, now=now, base_url=base_url, actor=actor)
    return incident


def opened_message(title: str) -> str:
    """The first timeline line of every incident."""
    return f"Incident opened: {title}"


def acknowledge_incident(session: Session, incident: Incident, *, actor: Actor, now: datetime,
                         via: str | None = None) -> Incident:
    """Acknowledge a triggered incident: escalation stops and unsent pages are cancelled.

    When the policy sets `ack_timeout_minutes`, the incident is triggered again if it is
    not resolved by then. Acknowledging an acknowledged or resolved incident is a Conflict.
    """
    incident = lock_incident(session, incident)
    if incident.status != "triggered":
        raise Conflict(f"incident {incident.id} is {incident.status}; only a triggered incident can be "
                       "acknowledged", detail={"status": incident.status})
    _acknowledge(incident, actor, now)
    incident.retrigger_at = escalation.ack_timeout_at(session, incident, now)
    session.flush()
    cancelled = cancel_pending_pages(session, incident, now=now)
    detail = {"cancelled_notifications": cancelled, **_via(via)}
    if incident.retrigger_at is not None:
        detail["retrigger_at"] = incident.retrigger_at.isoformat()
    timeout = (f"; pages again at {incident.retrigger_at:%H:%M} UTC unless resolved"
               if incident.retrigger_at is not None else "")
    record_event(session, incident, "acknowledged",
                 "Acknowledged" + _via_note(via) + _cancelled_note(cancelled) + timeout,
                 actor=actor, detail=detail, now=now)
    return incident


def snooze_incident(session: Session, incident: Incident, *, minutes: int, actor: Actor, now: datetime,
                    via: str | None = None) -> Incident:
    """Acknowledge an open incident until `minutes` from now (1 to 1440); then it pages level 1 again.

    A triggered incident is acknowledged (escalation stops, unsent pages are cancelled); an
    acknowledged or already snoozed one gets the new end time. A resolved incident is a
    Conflict; minutes that are not an integer in range are Invalid.
    """
    if isinstance(minutes, bool) or not isinstance(minutes, int) \
            or not MIN_SNOOZE_MINUTES <= minutes <= MAX_SNOOZE_MINUTES:
        raise Invalid("invalid snooze", fields={
            "minutes": f"must be an integer from {MIN_SNOOZE_MINUTES} to {MAX_SNOOZE_MINUTES}"})
    incident = lock_incident(session, incident)
    if incident.status == "resolved":
        raise Conflict(f"incident {incident.id} is resolved; it cannot be snoozed",
                       detail={"status": incident.status})
    previous = incident.status
    if previous == "triggered":
        _acknowledge(incident, actor, now)
    until = now + timedelta(minutes=minutes)
    incident.snoozed_until = incident.retrigger_at = until
    incident.snoozed_by_id = actor.id if isinstance(actor, User) else None
    incident.updated_at = now
    session.flush()
    cancelled = cancel_pending_pages(session, incident, now=now)
    record_event(session, incident, "snoozed",
                 f"Snoozed for {_duration(minutes)} until {until:%H:%M} UTC" + _via_note(via)
                 + _cancelled_note(cancelled) + ("; it pages level 1 again then unless resolved"),
                 actor=actor, detail={"minutes": minutes, "snoozed_until": until.isoformat(),
                                      "previous_status": previous, "cancelled_notifications": cancelled,
                                      **_via(via)}, now=now)
    return incident


def _acknowledge(incident: Incident, actor: Actor, now: datetime) -> None:
    incident.status = "acknowledged"
    incident.acknowledged_at = now
    incident.acknowledged_by_id = actor.id if isinstance(actor, User) else None
    if isinstance(actor, User):
        incident.assignee_id = actor.id
    incident.next_escalation_at = None
    incident.snoozed_until = incident.snoozed_by_id = None
    incident.updated_at = now


def _clear_wakeup(incident: Incident) -> None:
    """The incident leaves the acknowledged state: no snooze or ack timeout applies any more."""
    incident.retrigger_at = incident.snoozed_until = incident.snoozed_by_id = None


def resolve_incident(session: Session, incident: Incident, *, actor: Actor, now: datetime,
                     note: str | None = None, via: str | None = None) -> Incident:
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
    _clear_wakeup(incident)
    incident.updated_at = now
    session.flush()
    cancelled = cancel_pending_pages(session, incident, now=now)
    note = note.strip() if note else None
    detail = {"cancelled_notifications": cancelled, **_via(via)}
    if note:
        detail["note"] = note
    record_event(session, incident, "resolved", ("Resolved" + _via_note(via) + (f": {note}" if note else ""))
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
    _clear_wakeup(incident)
    incident.updated_at = now
    record_event(session, incident, "reopened", f"Reopened (was {previous}); paging restarts at level 1",
                 actor=actor, detail={"previous_status": previous}, now=now)
    escalation.start_escalation(session, incident, now=now, base_url=base_url, actor=actor)
    return incident


def escalate_incident(session: Session, incident: Incident, *, actor: Actor, now: datetime,
                      base_url: str, via: str | None = None) -> Incident:
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
    _clear_wakeup(incident)
    # A new paging pass: its pages get their own dedup keys even when a level repeats.
    incident.page_generation = (incident.page_generation or 0) + 1
    index = escalation.next_level_index(levels, previous_level)
    if index >= len(levels):
        index = 0
        incident.escalation_round += 1
    incident.updated_at = now
    record_event(session, incident, "escalated",
                 f"Escalated by hand from level {previous_level} to level {levels[index].level_number}"
                 + _via_note(via) + (" (was acknowledged)" if previous_status == "acknowledged" else ""),
                 actor=actor, detail={"from_level": previous_level, "to_level": levels[index].level_number,
                                      "manual": True, "previous_status": previous_status, **_via(via)},
                 now=now)
    escalation.walk_levels(session, incident, levels, index, now=now, base_url=base_url, actor=actor)
    return incident


def reassign_incident(session: Session, incident: Incident, user: User | int, *, actor: Actor,
                      now: datetime, base_url: str) -> Incident:
    """Assign an open incident to an active user and page them, in the caller's transaction.

    The new assignee gets one page per enabled contact method (outbox rows) and keeps the
    incident: later escalation steps page further levels without taking it back. A
    triggered incident gives them a full level delay before the next level is paged.
    Resolved incidents cannot be reassigned.
    """
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
    incident.assignment_pinned = True
    incident.updated_at = now
    # Reassign pages are a paging pass of their own (level 0), so a second reassign to the
    # same person pages again instead of colliding with the first one's dedup key.
    incident.page_generation = (incident.page_generation or 0) + 1
    delay = _current_level_delay(session, incident)
    if incident.status == "triggered" and incident.next_escalation_at is not None and delay is not None:
        incident.next_escalation_at = max(incident.next_escalation_at, now + timedelta(minutes=delay))
    session.flush()
    result = page_users(session, incident, [user], level=0, now=now, base_url=base_url)[0]
    paged = (f"; paged {user.name} ({', '.join(result.channels)})" if result.channels
             else f"; {user.name} has no enabled contact method, nobody was paged")
    record_event(session, incident, "reassigned", f"Reassigned to {user.name}{paged}", actor=actor,
                 detail={"from_user_id": previous, "to_user_id": user.id, "channels": result.channels,
                         "notification_ids": result.notification_ids}, now=now)
    return incident


def _current_level_delay(session: Session, incident: Incident) -> int | None:
    for level in escalation.policy_levels(session, incident):
        if level.level_number == incident.current_level:
            return level.delay_minutes
    return None


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


@dataclass
class BulkResult:
    """What a bulk action did: the incidents it changed and, per skipped id, why not."""

    action: str
    done: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)


def act_on_incidents(session: Session, incident_ids, action: str, *, actor: Actor, now: datetime) -> BulkResult:
    """Acknowledge or resolve several incidents at once (the incident list's multi-select).

    Each incident is one savepoint: an id that does not exist, or an incident whose state
    does not allow the action (acknowledging a resolved one), is skipped with the reason and
    the others still change. A bad action or id list is Invalid and changes nothing.
    """
    errors: dict = {}
    if action not in BULK_ACTIONS:
        errors["action"] = f"must be one of {', '.join(BULK_ACTIONS)}"
    if not isinstance(incident_ids, (list, tuple)) or not incident_ids:
        errors["incident_ids"] = "choose at least one incident"
    elif len(incident_ids) > MAX_BULK:
        errors["incident_ids"] = f"at most {MAX_BULK} incidents at once"
    elif any(isinstance(i, bool) or not isinstance(i, int) for i in incident_ids):
        errors["incident_ids"] = "must be incident ids (integers)"
    if errors:
        raise Invalid("invalid bulk action", fields=errors)
    result = BulkResult(action=action)
    for incident_id in dict.fromkeys(incident_ids):
        incident = session.get(Incident, incident_id) if 0 < incident_id < 2**31 else None
        if incident is None:
            result.skipped[incident_id] = "not found"
            continue
        try:
            with session.begin_nested():
                if action == "acknowledge":
                    acknowledge_incident(session, incident, actor=actor, now=now)
                else:
                    resolve_incident(session, incident, actor=actor, now=now)
        except Conflict:
            session.refresh(incident)
            result.skipped[incident_id] = f"already {incident.status}"
            continue
        result.done.append(incident_id)
    return result


def _via(via: str | None) -> dict:
    return {"via": via} if via else {}


def _via_note(via: str | None) -> str:
    return f" via {via}" if via else ""


def _duration(minutes: int) -> str:
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    if minutes > 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes} min"
