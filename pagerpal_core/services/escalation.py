"""Escalation policies (levels and targets), target resolution, and the escalation step.

A policy is an ordered list of levels with unique level numbers. Each level has a delay
(minutes until the next level is paged if nobody acknowledges) and one or more targets:
a user, a schedule (whoever is on call there) or a team (whoever is on call in the team's
schedules). After the last level the policy starts again from its first level up to
`repeat_count` times, then records "escalation exhausted".

A level whose targets reach nobody writes a warning on the timeline and the next level is
paged at once. If a whole pass through the policy reaches nobody, the incident is flagged
`unrouted` (the dashboard shows it) rather than dropped.

The worker calls `run_escalation_step`; it claims due incidents with FOR UPDATE SKIP
LOCKED on PostgreSQL, so concurrent steps, acknowledges and manual escalations each see a
locked incident row and never page one level twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from pagerpal_core.db import is_postgres
from pagerpal_core.errors import Conflict, Invalid, NotFound
from pagerpal_core.logs import log_fields
from pagerpal_core.models import (
    AlertSource,
    EscalationLevel,
    EscalationPolicy,
    EscalationTarget,
    Incident,
    Schedule,
    Team,
    User,
)
from pagerpal_core.models.escalation import TARGET_TYPES
from pagerpal_core.services.config_fields import UNSET, clean_int, clean_text, lookup, lookup_active_user, raise_if
from pagerpal_core.services.oncall import team_on_call, who_is_on_call
from pagerpal_core.services.paging import page_users
from pagerpal_core.services.timeline import record_event
from pagerpal_core.timeutil import utcnow

log = logging.getLogger(__name__)

MAX_DELAY_MINUTES = 7 * 24 * 60
MAX_REPEAT = 20
# An incident whose escalation failed unexpectedly is tried again after this long, so one
# broken incident cannot hold up the others in every cycle.
FAILED_STEP_BACKOFF = timedelta(minutes=1)


# --- policies ----------------------------------------------------------------------------

def get_policy(session: Session, policy_id: int) -> EscalationPolicy:
    """The policy with `policy_id`, or NotFound."""
    policy = session.get(EscalationPolicy, policy_id) if isinstance(policy_id, int) else None
    if policy is None:
        raise NotFound(f"escalation policy {policy_id} not found")
    return policy


def list_policies(session: Session) -> list[EscalationPolicy]:
    """Every policy by name, levels and targets loaded."""
    return list(session.scalars(select(EscalationPolicy).order_by(EscalationPolicy.name).options(
        selectinload(EscalationPolicy.levels).selectinload(EscalationLevel.targets))))


def create_policy(session: Session, *, name: str, description: str = "", team: Team | int | None = None,
                  repeat_count: int = 0, levels: list[dict] | None = None,
                  now: datetime | None = None) -> EscalationPolicy:
    """Create a policy, optionally with its levels.

    `levels` is a list of {"delay_minutes", "targets", optional "level_number"} (see
    `add_level`); numbers default to 1, 2, 3... A duplicate name or level number is a Conflict.
    """
    errors: dict = {}
    name = clean_text(name, "name", errors, max_len=120)
    description = clean_text(description, "description", errors, max_len=1000, required=False)
    repeat_count = clean_int(repeat_count, "repeat_count", errors, minimum=0, maximum=MAX_REPEAT)
    team = lookup(session, Team, team, "team_id", errors, label="team") if team is not None else None
    if levels is not None and not isinstance(levels, list):
        errors["levels"] = "must be a list"
    raise_if(errors, "invalid escalation policy")
    policy = EscalationPolicy(name=name, description=description, team_id=team.id if team else None,
                              repeat_count=repeat_count, created_at=now or utcnow())
    try:
        with session.begin_nested():
            session.add(policy)
            session.flush()
    except IntegrityError:
        raise Conflict(f"an escalation policy named {name} already exists",
                       fields={"name": "already in use"}) from None
    for i, spec in enumerate(levels or []):
        if not isinstance(spec, dict):
            raise Invalid("invalid escalation policy", fields={f"levels[{i}]": "must be an object"})
        try:
            add_level(session, policy, level_number=spec.get("level_number"),
                      delay_minutes=spec.get("delay_minutes", 15), targets=spec.get("targets", []))
        except (Invalid, Conflict) as exc:
            # Report the field inside the list, so the caller knows which level was wrong.
            exc.fields = ({f"levels[{i}].{k}": v for k, v in exc.fields.items()}
                          or {f"levels[{i}]": exc.message})
            raise
    return policy


def update_policy(session: Session, policy: EscalationPolicy, *, name=UNSET, description=UNSET, team=UNSET,
                  repeat_count=UNSET) -> EscalationPolicy:
    """Change a policy's name, description, team (None detaches) or repeat count."""
    errors: dict = {}
    values = {}
    if name is not UNSET:
        values["name"] = clean_text(name, "name", errors, max_len=120)
    if description is not UNSET:
        values["description"] = clean_text(description, "description", errors, max_len=1000, required=False)
    if repeat_count is not UNSET:
        values["repeat_count"] = clean_int(repeat_count, "repeat_count", errors, minimum=0,
                                           maximum=MAX_REPEAT)
    if team is not UNSET:
        found = lookup(session, Team, team, "team_id", errors, label="team") if team is not None else None
        values["team_id"] = found.id if found else None
    raise_if(errors, "invalid escalation policy")
    try:
        with session.begin_nested():
            for key, value in values.items():
                setattr(policy, key, value)
            session.flush()
    except IntegrityError:
        raise Conflict(f"an escalation policy named {values.get('name')} already exists",
                       fields={"name": "already in use"}) from None
    return policy


def delete_policy(session: Session, policy: EscalationPolicy) -> None:
    """Delete a policy with its levels; refused while alert sources or incidents use it."""
    try:
        with session.begin_nested():
            session.delete(policy)
            session.flush()
    except IntegrityError:
        raise Conflict(f"escalation policy {policy.name} is used by alert sources or incidents") from None


# --- levels ------------------------------------------------------------------------------

def get_level(session: Session, policy: EscalationPolicy, level_id: int) -> EscalationLevel:
    """One level of `policy`, or NotFound."""
    level = session.get(EscalationLevel, level_id) if isinstance(level_id, int) else None
    if level is None or level.policy_id != policy.id:
        raise NotFound(f"level {level_id} not found in policy {policy.name}")
    return level


def add_level(session: Session, policy: EscalationPolicy, *, level_number: int | None = None,
              delay_minutes: int = 15, targets: list | None = None) -> EscalationLevel:
    """Add a level (default number: one past the highest) with its targets.

    A level number the policy already has is a Conflict. `targets` as for `add_target`.
    """
    errors: dict = {}
    if level_number is not None:
        level_number = clean_int(level_number, "level_number", errors, minimum=1, maximum=1000)
    delay_minutes = clean_int(delay_minutes, "delay_minutes", errors, minimum=0, maximum=MAX_DELAY_MINUTES)
    if targets is not None and not isinstance(targets, list):
        errors["targets"] = "must be a list"
    parsed = [_parse_target(session, t, f"targets[{i}]", errors) for i, t in enumerate(targets or [])]
    keys = [p for p in parsed if p is not None]
    if len(set(keys)) != len(keys):
        errors["targets"] = "lists the same target twice"
    raise_if(errors, "invalid escalation level")
    if level_number is None:
        level_number = session.scalar(select(func.coalesce(func.max(EscalationLevel.level_number), 0) + 1)
                                      .where(EscalationLevel.policy_id == policy.id))
    level = EscalationLevel(policy_id=policy.id, level_number=level_number, delay_minutes=delay_minutes)
    try:
        with session.begin_nested():
            session.add(level)
            session.flush()
    except IntegrityError:
        raise Conflict(f"policy {policy.name} already has a level {level_number}",
                       fields={"level_number": "already used in this policy"}) from None
    for kind, target_id in keys:
        session.add(EscalationTarget(level_id=level.id, target_type=kind, **{f"{kind}_id": target_id}))
    session.flush()
    session.refresh(level, ["targets"])
    session.refresh(policy, ["levels"])
    return level


def update_level(session: Session, level: EscalationLevel, *, level_number=UNSET,
                 delay_minutes=UNSET) -> EscalationLevel:
    """Renumber a level or change its delay; a number already used in the policy is a Conflict."""
    errors: dict = {}
    values = {}
    if level_number is not UNSET:
        values["level_number"] = clean_int(level_number, "level_number", errors, minimum=1, maximum=1000)
    if delay_minutes is not UNSET:
        values["delay_minutes"] = clean_int(delay_minutes, "delay_minutes", errors, minimum=0,
                                            maximum=MAX_DELAY_MINUTES)
    raise_if(errors, "invalid escalation level")
    try:
        with session.begin_nested():
            for key, value in values.items():
                setattr(level, key, value)
            session.flush()
    except IntegrityError:
        raise Conflict(f"the policy already has a level {values.get('level_number')}",
                       fields={"level_number": "already used in this policy"}) from None
    return level


def delete_level(session: Session, level: EscalationLevel) -> None:
    """Delete a level and its targets (incidents at that level move on to the next one)."""
    policy = level.policy
    session.delete(level)
    session.flush()
    if policy is not None:
        session.refresh(policy, ["levels"])


# --- targets -----------------------------------------------------------------------------

def _parse_target(session: Session, target, field: str, errors: dict) -> tuple[str, int] | None:
    """(type, id) from {"type": ..., "id": ...} or a User/Schedule/Team instance."""
    if isinstance(target, (User, Schedule, Team)):
        kind = {User: "user", Schedule: "schedule", Team: "team"}[type(target)]
        target = {"type": kind, "id": target}
    if not isinstance(target, dict):
        errors[field] = 'must be {"type": "user"|"schedule"|"team", "id": <id>}'
        return None
    kind = target.get("type")
    if kind not in TARGET_TYPES:
        errors[field] = f"type must be one of {', '.join(TARGET_TYPES)}"
        return None
    if kind == "user":
        row = lookup_active_user(session, target.get("id"), field, errors)
    else:
        row = lookup(session, Schedule if kind == "schedule" else Team, target.get("id"), field, errors,
                     label=kind)
    return (kind, row.id) if row is not None else None


def add_target(session: Session, level: EscalationLevel, target) -> EscalationTarget:
    """Add a target to a level: {"type": "user"|"schedule"|"team", "id": n} or a model instance.

    A user must be active. Adding a target the level already has is a Conflict.
    """
    errors: dict = {}
    parsed = _parse_target(session, target, "target", errors)
    raise_if(errors, "invalid escalation target")
    kind, target_id = parsed
    # No index says "one target once per level", so serialise writers on the level row
    # (FOR UPDATE on PostgreSQL; SQLite transactions are serialised) and then look.
    session.flush()
    session.execute(select(EscalationLevel.id).where(EscalationLevel.id == level.id).with_for_update())
    column = getattr(EscalationTarget, f"{kind}_id")
    existing = session.scalar(select(EscalationTarget.id).where(
        EscalationTarget.level_id == level.id, EscalationTarget.target_type == kind, column == target_id))
    if existing is not None:
        raise Conflict(f"level {level.level_number} already targets {kind} {target_id}",
                       fields={"target": "already a target of this level"}, detail={"target_id": existing})
    row = EscalationTarget(level_id=level.id, target_type=kind, **{f"{kind}_id": target_id})
    session.add(row)
    session.flush()
    session.refresh(level, ["targets"])
    return row


def remove_target(session: Session, level: EscalationLevel, target_id: int) -> None:
    """Remove one target from a level."""
    target = session.get(EscalationTarget, target_id) if isinstance(target_id, int) else None
    if target is None or target.level_id != level.id:
        raise NotFound(f"target {target_id} not found in level {level.level_number}")
    session.delete(target)
    session.flush()
    session.refresh(level, ["targets"])


@dataclass(frozen=True)
class Recipient:
    """A person a level pages, and the target that led to them ("user", "schedule Primary")."""

    user: User
    via: str


def resolve_targets(session: Session, level: EscalationLevel, at: datetime) -> list[Recipient]:
    """The distinct active people `level` pages at instant `at`, in target order.

    A user target counts only while the user is active; a schedule target is whoever is on
    call there; a team target is whoever is on call in the team's schedules.
    """
    found: dict[int, Recipient] = {}
    for target in level.targets:
        if target.target_type == "user":
            user = session.get(User, target.user_id)
            people, via = ([user] if user is not None and user.active else []), "user"
        elif target.target_type == "schedule":
            schedule = session.get(Schedule, target.schedule_id)
            shift = who_is_on_call(session, schedule, at) if schedule is not None else None
            people, via = ([shift.user] if shift else []), f"schedule {schedule.name if schedule else '?'}"
        else:
            team = session.get(Team, target.team_id)
            people = team_on_call(session, team, at) if team else []
            via = f"team {team.name if team else '?'}"
        for user in people:
            found.setdefault(user.id, Recipient(user, via))
    return list(found.values())


# --- escalating an incident --------------------------------------------------------------

def policy_levels(session: Session, incident: Incident) -> list[EscalationLevel]:
    """The incident's policy levels in order, targets loaded ([] without a policy)."""
    if incident.policy_id is None:
        return []
    return list(session.scalars(select(EscalationLevel).where(EscalationLevel.policy_id == incident.policy_id)
                                .options(selectinload(EscalationLevel.targets))
                                .order_by(EscalationLevel.level_number)))


def _page_level(session: Session, incident: Incident, level: EscalationLevel, *, now: datetime,
                base_url: str, actor) -> bool:
    """Page one level; True when anyone was reached. Writes the timeline either way."""
    recipients = resolve_targets(session, level, now)
    results = page_users(session, incident, [r.user for r in recipients], level=level.level_number, now=now,
                         base_url=base_url)
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
    if incident.assignee_id is None or incident.assignee_id not in {r.user.id for r, _ in reached}:
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


def start_escalation(session: Session, incident: Incident, *, now: datetime, base_url: str,
                     actor=None) -> bool:
    """Begin a new paging pass at level 1 (trigger and reopen); flags `unrouted` if nobody is reached."""
    incident.page_generation = (incident.page_generation or 0) + 1
    incident.escalation_round = 0
    incident.current_level = 0
    if incident.policy_id is None:
        return mark_unrouted(session, incident, "no escalation policy applies to this incident", now=now,
                             actor=actor)
    levels = policy_levels(session, incident)
    if not levels:
        return mark_unrouted(session, incident, "the escalation policy has no levels", now=now, actor=actor)
    if not walk_levels(session, incident, levels, 0, now=now, base_url=base_url, actor=actor):
        return mark_unrouted(session, incident, "no level of the escalation policy reaches anyone", now=now,
                             actor=actor)
    return True


def mark_unrouted(session: Session, incident: Incident, reason: str, *, now: datetime, actor=None) -> bool:
    """Flag an incident that reached no one (shown on the dashboard); always returns False."""
    incident.unrouted = True
    incident.next_escalation_at = None
    session.flush()
    record_event(session, incident, "unrouted", f"Nobody was paged: {reason}.", actor=actor,
                 detail={"reason": reason}, now=now)
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
    query = (select(Incident)
             .where(Incident.status == "triggered", Incident.next_escalation_at.is_not(None),
                    Incident.next_escalation_at <= now)
             .order_by(Incident.next_escalation_at, Incident.id).limit(limit)
             .execution_options(populate_existing=True))
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True, of=Incident)
    return list(session.scalars(query))


def run_escalation_step(session: Session, *, now: datetime, base_url: str, limit: int = 50) -> int:
    """The worker's escalation step: advance every due triggered incident one level.

    Returns how many incidents were processed. The caller commits. Each incident runs in
    a savepoint: an unexpected error on one is logged, its next attempt is pushed back by
    FAILED_STEP_BACKOFF, and the others still escalate.
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
    return len(claimed)


def incident_policy(session: Session, incident: Incident) -> EscalationPolicy | None:
    """The policy an incident should use: its own, else its alert source's."""
    if incident.policy_id is not None:
        return session.get(EscalationPolicy, incident.policy_id)
    if incident.alert_source_id is not None:
        source = session.get(AlertSource, incident.alert_source_id)
        if source is not None and source.policy_id is not None:
            return session.get(EscalationPolicy, source.policy_id)
    return None
