"""The escalation engine: paging an incident level by level, and the worker's escalation step.

A triggered incident pages its policy's levels in order (see `escalation_policies` for the
policy itself and `targets` for who a level reaches). After the last level the policy
starts again from its first level up to `repeat_count` times, then records "escalation
exhausted".

A level whose targets reach nobody writes a warning on the timeline and the next level is
paged at once. If a whole pass through the policy reaches nobody, the incident is flagged
`unrouted` (the dashboard shows it) rather than dropped.

An acknowledged incident may carry `retrigger_at`: the end of a snooze, or the policy's
acknowledgement timeout. When that time passes and the incident is still acknowledged, the
step sends it back to triggered and pages level 1 again.

The worker calls `run_escalation_step`; it claims due incidents with FOR UPDATE SKIP
LOCKED on PostgreSQL, so concurrent steps, acknowledges and manual escalations each see a
locked incident row and never page one level twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pagerpal_core.db import is_postgres
from pagerpal_core.logs import log_fields
from pagerpal_core.models import AlertSource, EscalationLevel, EscalationPolicy, Incident
from pagerpal_core.services import maintenance
from pagerpal_core.services.paging import page_users
from pagerpal_core.services.targets import Recipient, resolve_targets
from pagerpal_core.services.timeline import record_event
from pagerpal_core.services.webhooks import page_team_webhooks
from pagerpal_core.wakeup import notify_new_work

log = logging.getLogger(__name__)

# An incident whose escalation failed unexpectedly is tried again after this long, so one
# broken incident cannot hold up the others in every cycle.
FAILED_STEP_BACKOFF = timedelta(minutes=1)


def policy_levels(session: Session, incident: Incident) -> list[EscalationLevel]:
    """The incident's policy levels in order, targets loaded ([] without a policy)."""
    if incident.policy_id is None:
        return []
    return list(session.scalars(select(EscalationLevel).where(EscalationLevel.policy_id == incident.policy_id)
                                .options(selectinload(EscalationLevel.targets))
                                .order_by(EscalationLevel.level_number)))


def paging_now(session: Session, incident: Incident, now: datetime) -> list[Recipient]:
    """Who the incident's current level is paging, while paging is in progress.

    Empty once it is acknowledged, snoozed, resolved, unrouted or exhausted: nobody is being
    paged then, whatever the schedule says.
    """
    if incident.paging_state != "paging" or not incident.current_level:
        return []
    for level in policy_levels(session, incident):
        if level.level_number == incident.current_level:
            return resolve_targets(session, level, now)
    return []


def _page_level(session: Session, incident: Incident, level: EscalationLevel, *, now: datetime,
                base_url: str, actor) -> bool:
    """Page one level; True when anyone was reached. Writes the timeline either way."""
    recipients = resolve_targets(session, level, now)
    results = page_users(session, incident, [r.user for r in recipients], level=level.level_number, now=now,
                         base_url=base_url)
    posted = page_team_webhooks(session, incident, level, now=now, base_url=base_url)
    if posted:
        record_event(session, incident, "webhook_paged",
                     f"Level {level.level_number} posted to {', '.join(t.name for t, _ in posted)} chat webhook",
                     actor=actor, detail={"level": level.level_number,
                                          "notification_ids": [n.id for _, n in posted]}, now=now)
        notify_new_work(session)
    reached = [(r, res) for r, res in zip(recipients, results, strict=True) if res.reached]
    unreachable = [r for r, res in zip(recipients, results, strict=True) if not res.reached]
    detail = {
        "level": level.level_number, "round": incident.escalation_round,
        "page_generation": incident.page_generation,
        "paged": [{"user_id": r.user.id, "name": r.user.name, "via": r.via, "channels": res.channels,
                   "notification_ids": res.notification_ids} for r, res in reached],
        "no_contact_method": [{"user_id": r.user.id, "name": r.user.name, "via": r.via} for r in unreachable],
    }
    if not reached:
        why = (f"; {', '.join(r.user.name for r in unreachable)} had no enabled contact method"
               if unreachable else "; no target is on call or active")
        record_event(session, incident, "level_unreachable",
                     f"Level {level.level_number} reached no one{why}. Moving to the next level.",
                     actor=actor, detail=detail, now=now)
        return False
    names = ", ".join(f"{r.user.name} ({', '.join(res.channels) or 'already queued'})" for r, res in reached)
    record_event(session, incident, "paged", f"Paged level {level.level_number}: {names}",
                 actor=actor, detail=detail, now=now)
    # Paging follows the levels, and so does an automatic assignment; an assignee a person
    # chose (reassign) keeps the incident while further levels are paged.
    if not incident.assignment_pinned and (
            incident.assignee_id is None or incident.assignee_id not in {r.user.id for r, _ in reached}):
        incident.assignee_id = reached[0][0].user.id
    return True


def walk_levels(session: Session, incident: Incident, levels: list[EscalationLevel], start_index: int, *,
                now: datetime, base_url: str, actor=None) -> bool:
    """Page `levels[start_index]`, moving on at once past levels that reach nobody.

    Past the last level the policy repeats from its first level while
    `escalation_round < repeat_count`, else records "escalation exhausted". Sets
    `current_level`, `escalation_round` and `next_escalation_at`. Returns True when
    someone was paged. Bounded: it stops after one full pass that reached nobody.
    """
    repeat_count = incident.policy.repeat_count if incident.policy is not None else 0
    count, index, empty_in_a_row = len(levels), start_index, 0
    while True:
        if index >= count:
            if incident.escalation_round < repeat_count and 0 < count and empty_in_a_row < count:
                incident.escalation_round += 1
                record_event(session, incident, "escalation_repeated",
                             f"Starting the policy again from level {levels[0].level_number} "
                             f"(repeat {incident.escalation_round} of {repeat_count})",
                             actor=actor, detail={"round": incident.escalation_round}, now=now)
                index = 0
                continue
            incident.next_escalation_at = None
            record_event(session, incident, "escalation_exhausted",
                         "Escalation exhausted: every level has been paged and nobody acknowledged"
                         if empty_in_a_row < count else "Escalation stopped: no level reaches anyone",
                         actor=actor, detail={"round": incident.escalation_round,
                                              "level": incident.current_level}, now=now)
            session.flush()
            return False
        level = levels[index]
        incident.current_level = level.level_number
        if _page_level(session, incident, level, now=now, base_url=base_url, actor=actor):
            incident.next_escalation_at = now + timedelta(minutes=level.delay_minutes)
            incident.unrouted = False
            session.flush()
            return True
        empty_in_a_row += 1
        if empty_in_a_row >= count:
            index = count  # a whole pass reached nobody: repeating cannot help
            continue
        index += 1


NO_POLICY = "no escalation policy applies to this incident"


def start_escalation(session: Session, incident: Incident, *, now: datetime, base_url: str,
                     actor=None) -> bool:
    """Begin a new paging pass at level 1 (trigger and reopen); flags `unrouted` if nobody is reached."""
    incident.page_generation = (incident.page_generation or 0) + 1
    incident.escalation_round = 0
    incident.current_level = 0
    # Maintenance first: a covered incident pages nobody (not even "unrouted") until the window ends.
    window = maintenance.active_window_for(session, incident.alert_source_id, incident.policy_id, now)
    if window is not None:
        return maintenance.hold_incident(session, incident, window, now=now, actor=actor)
    if incident.policy_id is None:
        return mark_unrouted(session, incident, NO_POLICY, now=now, actor=actor)
    levels = policy_levels(session, incident)
    if not levels:
        return mark_unrouted(session, incident, "the escalation policy has no levels", now=now, actor=actor)
    if not walk_levels(session, incident, levels, 0, now=now, base_url=base_url, actor=actor):
        return mark_unrouted(session, incident, "no level of the escalation policy reaches anyone", now=now,
                             actor=actor)
    return True


def unrouted_unless_held(policy_id: int | None) -> str | None:
    """Why a new incident with this policy will page nobody unless a maintenance window holds it
    (`start_escalation` asks the windows first) — asked before it is written, so it can be
    written flagged (see `unrouted_event`) — else None (it may page)."""
    return NO_POLICY if policy_id is None else None


def unrouted_event(reason: str) -> tuple[str, str, dict]:
    """The timeline event of an incident that reached no one: (kind, message, detail)."""
    return "unrouted", f"Nobody was paged: {reason}.", {"reason": reason}


def mark_unrouted(session: Session, incident: Incident, reason: str, *, now: datetime, actor=None) -> bool:
    """Flag an incident that reached no one (shown on the dashboard); always returns False."""
    incident.unrouted = True
    incident.next_escalation_at = None
    kind, message, detail = unrouted_event(reason)
    record_event(session, incident, kind, message, actor=actor, detail=detail, now=now)
    return False


def next_level_index(levels: list[EscalationLevel], current_level: int) -> int:
    """Index of the first level numbered above `current_level` (len(levels) when none is)."""
    for index, level in enumerate(levels):
        if level.level_number > current_level:
            return index
    return len(levels)


def advance_escalation(session: Session, incident: Incident, *, now: datetime, base_url: str,
                       actor=None) -> bool:
    """Move a triggered incident to its next level (or repeat, or exhaust) and page it."""
    levels = policy_levels(session, incident)
    if not levels:
        incident.next_escalation_at = None
        session.flush()
        record_event(session, incident, "escalation_exhausted",
                     "Escalation stopped: the escalation policy has no levels", actor=actor, now=now)
        return False
    previous = incident.current_level
    index = next_level_index(levels, previous)
    if index < len(levels):
        record_event(session, incident, "escalated",
                     f"Escalated from level {previous} to level {levels[index].level_number}",
                     actor=actor, detail={"from_level": previous, "to_level": levels[index].level_number,
                                          "round": incident.escalation_round}, now=now)
    return walk_levels(session, incident, levels, index, now=now, base_url=base_url, actor=actor)


def claim_due_incidents(session: Session, *, now: datetime, limit: int = 50) -> list[Incident]:
    """Lock and return triggered incidents whose next escalation time has passed.

    On PostgreSQL, FOR UPDATE SKIP LOCKED: an incident another transaction holds (an
    acknowledge in progress, another step) is skipped, and when the lock holder has already
    committed, PostgreSQL re-checks the WHERE clause on the new row version, so an incident
    acknowledged a moment ago is no longer "triggered" and is not claimed. SQLite
    transactions are serialised by BEGIN IMMEDIATE, which gives the same guarantee.
    populate_existing refreshes incidents this session already holds in memory.
    """
    return _claim_due(session, "triggered", Incident.next_escalation_at, now=now, limit=limit)


def claim_retrigger_due(session: Session, *, now: datetime, limit: int = 50) -> list[Incident]:
    """Lock and return acknowledged incidents whose snooze or acknowledgement timeout has ended.

    Same locking as `claim_due_incidents`: an incident resolved (or snoozed again) a moment
    ago is re-checked by PostgreSQL under the lock and no longer matches.
    """
    return _claim_due(session, "acknowledged", Incident.retrigger_at, now=now, limit=limit)


def _claim_due(session: Session, status: str, due_at, *, now: datetime, limit: int) -> list[Incident]:
    """Lock and return up to `limit` incidents in `status` whose `due_at` column has passed, earliest first."""
    query = (select(Incident)
             .where(Incident.status == status, due_at.is_not(None), due_at <= now)
             .order_by(due_at, Incident.id).limit(limit)
             .execution_options(populate_existing=True))
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True, of=Incident)
    return list(session.scalars(query))


def ack_timeout_at(session: Session, incident: Incident, now: datetime) -> datetime | None:
    """When an acknowledgement made at `now` runs out under the incident's policy (None: never)."""
    policy = session.get(EscalationPolicy, incident.policy_id) if incident.policy_id is not None else None
    if policy is None or not policy.ack_timeout_minutes:
        return None
    return now + timedelta(minutes=policy.ack_timeout_minutes)


def retrigger_incident(session: Session, incident: Incident, *, now: datetime, base_url: str,
                       actor="escalation") -> bool:
    """Send a (locked) acknowledged incident whose snooze or ack timeout ended back to triggered.

    Paging restarts at level 1 in a new paging pass; the timeline says why. Returns True
    when someone was paged.
    """
    snoozed_until, snoozer = incident.snoozed_until, incident.snoozed_by
    acknowledged_at = incident.acknowledged_at
    incident.status = "triggered"
    incident.acknowledged_at = incident.acknowledged_by_id = None
    incident.retrigger_at = incident.snoozed_until = incident.snoozed_by_id = None
    incident.updated_at = now
    if snoozed_until is not None:
        by = f" by {snoozer.name}" if snoozer is not None else ""
        record_event(session, incident, "snooze_ended",
                     f"Snooze{by} ended at {snoozed_until:%H:%M} UTC; paging restarts at level 1",
                     actor=actor, detail={"snoozed_until": snoozed_until.isoformat()}, now=now)
    else:
        minutes = incident.policy.ack_timeout_minutes if incident.policy is not None else None
        after = f" after {minutes} min" if minutes else ""
        record_event(session, incident, "ack_timeout",
                     f"Acknowledgement timed out{after} without a resolve; paging restarts at level 1",
                     actor=actor, detail={"acknowledged_at": acknowledged_at.isoformat() if acknowledged_at
                                          else None, "ack_timeout_minutes": minutes}, now=now)
    session.flush()
    return start_escalation(session, incident, now=now, base_url=base_url, actor=actor)


def run_escalation_step(session: Session, *, now: datetime, base_url: str, limit: int = 50) -> int:
    """The worker's escalation step: advance every due triggered incident one level, and send
    acknowledged incidents whose snooze or acknowledgement timeout ended back to level 1.

    Returns how many incidents were processed. The caller commits. Each incident runs in
    a savepoint: an unexpected error on one is logged, its next attempt is pushed back by
    FAILED_STEP_BACKOFF, and the others still escalate. Due escalations go first, so an
    incident re-triggered here is not also advanced in the same step.
    """
    claimed = claim_due_incidents(session, now=now, limit=limit)
    for incident in claimed:
        try:
            with session.begin_nested():
                advance_escalation(session, incident, now=now, base_url=base_url, actor="escalation")
        except Exception:  # one broken incident must not stop escalation for the rest
            log.exception("escalation failed", extra=log_fields(incident_id=incident.id))
            session.refresh(incident)
            incident.next_escalation_at = now + FAILED_STEP_BACKOFF
            session.flush()
    woken = claim_retrigger_due(session, now=now, limit=limit)
    for incident in woken:
        try:
            with session.begin_nested():
                retrigger_incident(session, incident, now=now, base_url=base_url, actor="escalation")
        except Exception:  # as above: retry this one later, carry on with the rest
            log.exception("re-triggering failed", extra=log_fields(incident_id=incident.id))
            session.refresh(incident)
            incident.retrigger_at = now + FAILED_STEP_BACKOFF
            session.flush()
    return len(claimed) + len(woken)


def incident_policy(session: Session, incident: Incident) -> EscalationPolicy | None:
    """The policy an incident should use: its own, else its alert source's."""
    if incident.policy_id is not None:
        return session.get(EscalationPolicy, incident.policy_id)
    if incident.alert_source_id is not None:
        source = session.get(AlertSource, incident.alert_source_id)
        if source is not None and source.policy_id is not None:
            return session.get(EscalationPolicy, source.policy_id)
    return None
