"""Escalation policies: CRUD of policies, their levels and the levels' targets.

A policy is an ordered list of levels with unique level numbers. Each level has a delay
(minutes until the next level is paged if nobody acknowledges) and one or more targets:
a user, a schedule (whoever is on call there) or a team (whoever is on call in the team's
schedules). After the last level the policy starts again from its first level up to
`repeat_count` times. A policy may set `ack_timeout_minutes`: an acknowledged incident
that is not resolved by then is triggered again (the escalation engine does that).

Who a level pages lives in `targets`; paging incidents level by level lives in `escalation`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from pagerpal_core.db import Keyset, get_or_not_found, unique_or_conflict
from pagerpal_core.errors import Conflict, Invalid
from pagerpal_core.models import EscalationLevel, EscalationPolicy, EscalationTarget, Schedule, Team, User
from pagerpal_core.models.escalation import TARGET_TYPES
from pagerpal_core.services.audit import audit_suppressed, record_audit, snapshot
from pagerpal_core.services.validation import UNSET, clean_int, clean_text, lookup, lookup_active_user, raise_if
from pagerpal_core.timeutil import utcnow

MAX_DELAY_MINUTES = 7 * 24 * 60
MAX_REPEAT = 20
MAX_ACK_TIMEOUT_MINUTES = 7 * 24 * 60


# --- policies ----------------------------------------------------------------------------

def clean_ack_timeout(value, errors: dict) -> int | None:
    """The acknowledgement timeout in minutes (1 to a week), None (or "") for none."""
    if value is None or value == "":
        return None
    return clean_int(value, "ack_timeout_minutes", errors, minimum=1, maximum=MAX_ACK_TIMEOUT_MINUTES)


def get_policy(session: Session, policy_id: int) -> EscalationPolicy:
    """The policy with `policy_id`, or NotFound."""
    return get_or_not_found(session, EscalationPolicy, policy_id, f"escalation policy {policy_id} not found")


def list_policies(session: Session, *, team: Team | None = None, page: Keyset | None = None) -> list[EscalationPolicy]:
    """Every policy (or a team's), levels and targets loaded, by name (by id for a keyset `page`)."""
    query = select(EscalationPolicy).options(
        selectinload(EscalationPolicy.levels).selectinload(EscalationLevel.targets))
    if team is not None:
        query = query.where(EscalationPolicy.team_id == team.id)
    if page is not None:
        return list(session.scalars(page.apply(query, EscalationPolicy.id)))
    return list(session.scalars(query.order_by(EscalationPolicy.name)))


# The fields the audit log shows of a policy.
POLICY_AUDIT_FIELDS = ("name", "description", "team_id", "repeat_count", "ack_timeout_minutes")


def _target_audit(target: EscalationTarget) -> dict:
    column = "team_id" if target.target_type == "team_webhook" else f"{target.target_type}_id"
    return {"type": target.target_type, "id": getattr(target, column, None)}


def _level_audit(level: EscalationLevel) -> dict:
    return {"policy_id": level.policy_id, "level_number": level.level_number, "delay_minutes": level.delay_minutes,
            "targets": [_target_audit(t) for t in level.targets]}


def create_policy(session: Session, *, name: str, description: str = "", team: Team | int | None = None,
                  repeat_count: int = 0, levels: list[dict] | None = None, ack_timeout_minutes: int | None = None,
                  now: datetime | None = None) -> EscalationPolicy:
    """Create a policy, optionally with its levels.

    `levels` is a list of {"delay_minutes", "targets", optional "level_number"} (see
    `add_level`); numbers default to 1, 2, 3... A duplicate name or level number is a Conflict.
    """
    errors: dict = {}
    name = clean_text(name, "name", errors, max_len=120)
    description = clean_text(description, "description", errors, max_len=1000, required=False)
    repeat_count = clean_int(repeat_count, "repeat_count", errors, minimum=0, maximum=MAX_REPEAT)
    ack_timeout_minutes = clean_ack_timeout(ack_timeout_minutes, errors)
    team = lookup(session, Team, team, "team_id", errors, label="team") if team is not None else None
    if levels is not None and not isinstance(levels, list):
        errors["levels"] = "must be a list"
    raise_if(errors, "invalid escalation policy")
    policy = EscalationPolicy(name=name, description=description, team_id=team.id if team else None,
                              repeat_count=repeat_count, ack_timeout_minutes=ack_timeout_minutes,
                              created_at=now or utcnow())
    with unique_or_conflict(session, f"an escalation policy named {name} already exists",
                            fields={"name": "already in use"}):
        session.add(policy)
    for i, spec in enumerate(levels or []):
        if not isinstance(spec, dict):
            raise Invalid("invalid escalation policy", fields={f"levels[{i}]": "must be an object"})
        try:
            with audit_suppressed(session):  # the policy's row below lists its levels
                add_level(session, policy, level_number=spec.get("level_number"),
                          delay_minutes=spec.get("delay_minutes", 15), targets=spec.get("targets", []))
        except (Invalid, Conflict) as exc:
            # Report the field inside the list, so the caller knows which level was wrong.
            exc.fields = ({f"levels[{i}].{k}": v for k, v in exc.fields.items()}
                          or {f"levels[{i}]": exc.message})
            raise
    record_audit(session, action="policy.created", object_type="escalation_policy", object_id=policy.id,
                 after={**snapshot(policy, *POLICY_AUDIT_FIELDS),
                        "levels": [_level_audit(level) for level in policy.levels]})
    return policy


def update_policy(session: Session, policy: EscalationPolicy, *, name=UNSET, description=UNSET, team=UNSET,
                  repeat_count=UNSET, ack_timeout_minutes=UNSET) -> EscalationPolicy:
    """Change a policy's name, description, team (None detaches), repeat count or ack timeout (None: off)."""
    errors: dict = {}
    values = {}
    if name is not UNSET:
        values["name"] = clean_text(name, "name", errors, max_len=120)
    if description is not UNSET:
        values["description"] = clean_text(description, "description", errors, max_len=1000, required=False)
    if repeat_count is not UNSET:
        values["repeat_count"] = clean_int(repeat_count, "repeat_count", errors, minimum=0,
                                           maximum=MAX_REPEAT)
    if ack_timeout_minutes is not UNSET:
        values["ack_timeout_minutes"] = clean_ack_timeout(ack_timeout_minutes, errors)
    if team is not UNSET:
        found = lookup(session, Team, team, "team_id", errors, label="team") if team is not None else None
        values["team_id"] = found.id if found else None
    raise_if(errors, "invalid escalation policy")
    before = snapshot(policy, *POLICY_AUDIT_FIELDS)
    with unique_or_conflict(session, f"an escalation policy named {values.get('name')} already exists",
                            fields={"name": "already in use"}):
        for key, value in values.items():
            setattr(policy, key, value)
    record_audit(session, action="policy.updated", object_type="escalation_policy", object_id=policy.id,
                 before=before, after=snapshot(policy, *POLICY_AUDIT_FIELDS))
    return policy


def delete_policy(session: Session, policy: EscalationPolicy) -> None:
    """Delete a policy with its levels; refused while alert sources or incidents use it."""
    before = {**snapshot(policy, "id", *POLICY_AUDIT_FIELDS), "levels": [_level_audit(lv) for lv in policy.levels]}
    with unique_or_conflict(session, f"escalation policy {policy.name} is used by alert sources or incidents"):
        session.delete(policy)
    record_audit(session, action="policy.deleted", object_type="escalation_policy", object_id=before["id"],
                 before=before)


# --- levels ------------------------------------------------------------------------------

def get_level(session: Session, policy: EscalationPolicy, level_id: int) -> EscalationLevel:
    """One level of `policy`, or NotFound."""
    return get_or_not_found(session, EscalationLevel, level_id, f"level {level_id} not found in policy {policy.name}",
                            lambda row: row.policy_id == policy.id)


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
    with unique_or_conflict(session, f"policy {policy.name} already has a level {level_number}",
                            fields={"level_number": "already used in this policy"}):
        session.add(level)
    for kind, target_id in keys:
        id_column = "team_id" if kind == "team_webhook" else f"{kind}_id"
        session.add(EscalationTarget(level_id=level.id, target_type=kind, **{id_column: target_id}))
    session.flush()
    session.refresh(level, ["targets"])
    session.refresh(policy, ["levels"])
    record_audit(session, action="policy.level_added", object_type="escalation_level", object_id=level.id,
                 after=_level_audit(level))
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
    before = snapshot(level, "policy_id", "level_number", "delay_minutes")
    with unique_or_conflict(session, f"the policy already has a level {values.get('level_number')}",
                            fields={"level_number": "already used in this policy"}):
        for key, value in values.items():
            setattr(level, key, value)
    record_audit(session, action="policy.level_updated", object_type="escalation_level", object_id=level.id,
                 before=before, after=snapshot(level, "policy_id", "level_number", "delay_minutes"))
    return level


def delete_level(session: Session, level: EscalationLevel) -> None:
    """Delete a level and its targets (incidents at that level move on to the next one)."""
    policy = level.policy
    before = {"id": level.id, **_level_audit(level)}
    session.delete(level)
    session.flush()
    if policy is not None:
        session.refresh(policy, ["levels"])
    record_audit(session, action="policy.level_deleted", object_type="escalation_level", object_id=before["id"],
                 before=before)


# --- targets -----------------------------------------------------------------------------

def _parse_target(session: Session, target, field: str, errors: dict) -> tuple[str, int] | None:
    """(type, id) from {"type": ..., "id": ...} or a User/Schedule/Team instance."""
    if isinstance(target, (User, Schedule, Team)):
        kind = {User: "user", Schedule: "schedule", Team: "team"}[type(target)]
        target = {"type": kind, "id": target}
    if not isinstance(target, dict):
        errors[field] = 'must be {"type": "user"|"schedule"|"team"|"team_webhook", "id": <id>}'
        return None
    kind = target.get("type")
    if kind not in TARGET_TYPES:
        errors[field] = f"type must be one of {', '.join(TARGET_TYPES)}"
        return None
    if kind == "user":
        row = lookup_active_user(session, target.get("id"), field, errors)
    else:
        row = lookup(session, Schedule if kind == "schedule" else Team, target.get("id"), field, errors,
                     label="team" if kind == "team_webhook" else kind)
        if kind == "team_webhook" and row is not None and not row.webhook_url:
            errors[field] = f"team {row.id} has no webhook URL"
            return None
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
    id_column = "team_id" if kind == "team_webhook" else f"{kind}_id"
    column = getattr(EscalationTarget, id_column)
    existing = session.scalar(select(EscalationTarget.id).where(
        EscalationTarget.level_id == level.id, EscalationTarget.target_type == kind, column == target_id))
    if existing is not None:
        raise Conflict(f"level {level.level_number} already targets {kind} {target_id}",
                       fields={"target": "already a target of this level"}, detail={"target_id": existing})
    row = EscalationTarget(level_id=level.id, target_type=kind, **{id_column: target_id})
    session.add(row)
    session.flush()
    session.refresh(level, ["targets"])
    record_audit(session, action="policy.target_added", object_type="escalation_target", object_id=row.id,
                 after={"level_id": level.id, **_target_audit(row)})
    return row


def remove_target(session: Session, level: EscalationLevel, target_id: int) -> None:
    """Remove one target from a level."""
    target = get_or_not_found(session, EscalationTarget, target_id,
                              f"target {target_id} not found in level {level.level_number}",
                              lambda row: row.level_id == level.id)
    before = {"level_id": level.id, **_target_audit(target)}
    session.delete(target)
    session.flush()
    session.refresh(level, ["targets"])
    record_audit(session, action="policy.target_removed", object_type="escalation_target", object_id=target_id,
                 before=before)
