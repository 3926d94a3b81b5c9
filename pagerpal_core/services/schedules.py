"""Schedules and their three layers: overrides, entries and rotations (configuration only).

Who is on call is worked out in `oncall.py`; this module creates, changes and deletes the
rows it reads. Times are aware UTC datetimes (or ISO-8601 strings); a rotation's handoff
time and start date are in the schedule's own IANA time zone.

Entries of one schedule may not overlap. That is a rule across rows, which no portable
index can express, so the entry services first lock the schedule row (SELECT ... FOR
UPDATE on PostgreSQL; SQLite transactions are already serialised by BEGIN IMMEDIATE):
two people adding clashing entries at the same moment then take turns, and the second
sees the first's entry and gets the conflict.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from pagerpal_core.db import Keyset, get_or_not_found, unique_or_conflict
from pagerpal_core.errors import Conflict, NotFound
from pagerpal_core.models import (
    EscalationTarget,
    Rotation,
    RotationParticipant,
    Schedule,
    ScheduleEntry,
    ScheduleOverride,
    Team,
    User,
)
from pagerpal_core.services.audit import record_audit, snapshot
from pagerpal_core.services.validation import (
    UNSET,
    clean_date,
    clean_instant,
    clean_int,
    clean_text,
    clean_time_of_day,
    clean_timezone,
    lookup,
    lookup_active_user,
    raise_if,
)
from pagerpal_core.timeutil import isoformat, utcnow

SHIFT_UNITS = ("hours", "days", "weeks")
# The fields each kind of row shows in the audit log.
SCHEDULE_AUDIT_FIELDS = ("name", "timezone", "description", "team_id")
ENTRY_AUDIT_FIELDS = ("schedule_id", "user_id", "starts_at", "ends_at")
OVERRIDE_AUDIT_FIELDS = ("schedule_id", "user_id", "starts_at", "ends_at", "reason")
ROTATION_AUDIT_FIELDS = ("schedule_id", "name", "shift_length", "shift_unit", "handoff_time", "start_date")


def _turn_order(rotation: Rotation) -> list[int]:
    return [p.user_id for p in sorted(rotation.participants, key=lambda p: p.position)]
MAX_SHIFT_LENGTH = {"hours": 24 * 366, "days": 366, "weeks": 52}


# --- schedules ---------------------------------------------------------------------------

def get_schedule(session: Session, schedule_id: int) -> Schedule:
    """The schedule with `schedule_id`, or NotFound."""
    return get_or_not_found(session, Schedule, schedule_id, f"schedule {schedule_id} not found")


def list_schedules(session: Session, *, team: Team | None = None, page: Keyset | None = None) -> list[Schedule]:
    """Every schedule (or a team's) with rotations loaded, by name (by id for a keyset `page`)."""
    query = select(Schedule).options(selectinload(Schedule.rotations).selectinload(Rotation.participants))
    if team is not None:
        query = query.where(Schedule.team_id == team.id)
    if page is not None:
        return list(session.scalars(page.apply(query, Schedule.id)))
    return list(session.scalars(query.order_by(Schedule.name)))


def create_schedule(session: Session, *, name: str, timezone: str = "UTC", description: str = "",
                    team: Team | int | None = None, now: datetime | None = None) -> Schedule:
    """Create a schedule in an IANA time zone; a duplicate name is a Conflict."""
    errors: dict = {}
    name = clean_text(name, "name", errors, max_len=120)
    timezone = clean_timezone(timezone, "timezone", errors)
    description = clean_text(description, "description", errors, max_len=1000, required=False)
    team = lookup(session, Team, team, "team_id", errors, label="team") if team is not None else None
    raise_if(errors, "invalid schedule")
    schedule = Schedule(name=name, timezone=timezone, description=description,
                        team_id=team.id if team else None, created_at=now or utcnow())
    with unique_or_conflict(session, f"a schedule named {name} already exists", fields={"name": "already in use"}):
        session.add(schedule)
    record_audit(session, action="schedule.created", object_type="schedule", object_id=schedule.id,
                 after=snapshot(schedule, *SCHEDULE_AUDIT_FIELDS))
    return schedule


def update_schedule(session: Session, schedule: Schedule, *, name=UNSET, timezone=UNSET, description=UNSET,
                    team=UNSET) -> Schedule:
    """Change a schedule's name, zone, description or team (None detaches); only given fields change.

    Changing the zone moves rotation handoffs (they are local times) but not entries or
    overrides (they are instants).
    """
    errors: dict = {}
    values = {}
    if name is not UNSET:
        values["name"] = clean_text(name, "name", errors, max_len=120)
    if timezone is not UNSET:
        values["timezone"] = clean_timezone(timezone, "timezone", errors)
    if description is not UNSET:
        values["description"] = clean_text(description, "description", errors, max_len=1000, required=False)
    if team is not UNSET:
        found = lookup(session, Team, team, "team_id", errors, label="team") if team is not None else None
        values["team_id"] = found.id if found else None
    raise_if(errors, "invalid schedule")
    before = snapshot(schedule, *SCHEDULE_AUDIT_FIELDS)
    with unique_or_conflict(session, f"a schedule named {values.get('name')} already exists",
                            fields={"name": "already in use"}):
        for key, value in values.items():
            setattr(schedule, key, value)
    record_audit(session, action="schedule.updated", object_type="schedule", object_id=schedule.id, before=before,
                 after=snapshot(schedule, *SCHEDULE_AUDIT_FIELDS))
    return schedule


def is_schedule_targeted(session: Session, schedule: Schedule) -> bool:
    """True when an escalation level pages this schedule (the schedule page warns before deleting it)."""
    return session.scalar(select(EscalationTarget.id).where(EscalationTarget.schedule_id == schedule.id)
                          .limit(1)) is not None


def delete_schedule(session: Session, schedule: Schedule) -> None:
    """Delete a schedule and its layers; refused while an escalation level targets it."""
    before = snapshot(schedule, "id", *SCHEDULE_AUDIT_FIELDS)
    with unique_or_conflict(session, f"schedule {schedule.name} is a target of an escalation policy; "
                            "remove it from the policy first"):
        session.delete(schedule)
    record_audit(session, action="schedule.deleted", object_type="schedule", object_id=before["id"], before=before)


def lock_schedule(session: Session, schedule: Schedule) -> Schedule:
    """Take the schedule's row lock for the rest of the transaction (see the module docstring)."""
    session.flush()
    session.execute(select(Schedule.id).where(Schedule.id == schedule.id).with_for_update())
    return schedule


# --- entries -----------------------------------------------------------------------------

def _window(starts_at, ends_at, errors: dict) -> tuple[datetime | None, datetime | None]:
    start = clean_instant(starts_at, "starts_at", errors)
    end = clean_instant(ends_at, "ends_at", errors)
    if start is not None and end is not None and end <= start:
        errors["ends_at"] = "must be after starts_at"
    return start, end


def _windowed(session: Session, model, schedule: Schedule, start: datetime | None, end: datetime | None,
              page: Keyset | None):
    """Rows of `model` (entries or overrides) of `schedule` overlapping [start, end), by start (by id for a page)."""
    query = select(model).where(model.schedule_id == schedule.id)
    if start is not None:
        query = query.where(model.ends_at > start)
    if end is not None:
        query = query.where(model.starts_at < end)
    if page is not None:
        return list(session.scalars(page.apply(query, model.id)))
    return list(session.scalars(query.order_by(model.starts_at, model.id)))


def list_entries(session: Session, schedule: Schedule, *, start: datetime | None = None,
                 end: datetime | None = None, page: Keyset | None = None) -> list[ScheduleEntry]:
    """The schedule's entries (those overlapping [start, end) when given), by start time (by id for a page)."""
    return _windowed(session, ScheduleEntry, schedule, start, end, page)


def get_entry(session: Session, schedule: Schedule, entry_id: int) -> ScheduleEntry:
    """One entry of `schedule`, or NotFound."""
    return get_or_not_found(session, ScheduleEntry, entry_id, f"entry {entry_id} not found in schedule {schedule.name}",
                            lambda row: row.schedule_id == schedule.id)


def _check_no_overlap(session: Session, schedule: Schedule, start: datetime, end: datetime,
                      *, ignore_id: int | None = None) -> None:
    query = select(ScheduleEntry).where(ScheduleEntry.schedule_id == schedule.id,
                                        ScheduleEntry.starts_at < end, ScheduleEntry.ends_at > start)
    if ignore_id is not None:
        query = query.where(ScheduleEntry.id != ignore_id)
    clash = session.scalar(query.order_by(ScheduleEntry.starts_at).limit(1))
    if clash is not None:
        who = session.get(User, clash.user_id)
        raise Conflict(
            f"overlaps entry {clash.id} ({who.name if who else 'user ' + str(clash.user_id)}, "
            f"{isoformat(clash.starts_at)} to {isoformat(clash.ends_at)}); entries of one schedule "
            "may not overlap — use an override for temporary cover",
            fields={"starts_at": f"overlaps entry {clash.id}"},
            detail={"conflicting_entry_id": clash.id})


def create_entry(session: Session, schedule: Schedule, *, user: User | int, starts_at, ends_at,
                 now: datetime | None = None) -> ScheduleEntry:
    """Add an explicit shift for an active user; overlapping another entry is a Conflict naming it."""
    errors: dict = {}
    user = lookup_active_user(session, user, "user_id", errors)
    start, end = _window(starts_at, ends_at, errors)
    raise_if(errors, "invalid schedule entry")
    lock_schedule(session, schedule)
    _check_no_overlap(session, schedule, start, end)
    entry = ScheduleEntry(schedule_id=schedule.id, user_id=user.id, starts_at=start, ends_at=end,
                          created_at=now or utcnow())
    session.add(entry)
    session.flush()
    record_audit(session, action="schedule_entry.created", object_type="schedule_entry", object_id=entry.id,
                 after=snapshot(entry, *ENTRY_AUDIT_FIELDS))
    return entry


def update_entry(session: Session, entry: ScheduleEntry, *, user=UNSET, starts_at=UNSET,
                 ends_at=UNSET) -> ScheduleEntry:
    """Change an entry's user or times; the same overlap rule applies."""
    errors: dict = {}
    new_user = lookup_active_user(session, user, "user_id", errors) if user is not UNSET else None
    start, end = _window(entry.starts_at if starts_at is UNSET else starts_at,
                         entry.ends_at if ends_at is UNSET else ends_at, errors)
    raise_if(errors, "invalid schedule entry")
    lock_schedule(session, entry.schedule)
    _check_no_overlap(session, entry.schedule, start, end, ignore_id=entry.id)
    before = snapshot(entry, *ENTRY_AUDIT_FIELDS)
    if new_user is not None:
        entry.user_id = new_user.id
    entry.starts_at, entry.ends_at = start, end
    session.flush()
    record_audit(session, action="schedule_entry.updated", object_type="schedule_entry", object_id=entry.id,
                 before=before, after=snapshot(entry, *ENTRY_AUDIT_FIELDS))
    return entry


def delete_entry(session: Session, entry: ScheduleEntry) -> None:
    """Delete an entry."""
    before = snapshot(entry, "id", *ENTRY_AUDIT_FIELDS)
    session.delete(entry)
    session.flush()
    record_audit(session, action="schedule_entry.deleted", object_type="schedule_entry", object_id=before["id"],
                 before=before)


# --- overrides ---------------------------------------------------------------------------

def list_overrides(session: Session, schedule: Schedule, *, start: datetime | None = None,
                   end: datetime | None = None, page: Keyset | None = None) -> list[ScheduleOverride]:
    """The schedule's overrides (those overlapping [start, end) when given), by start time (by id for a page)."""
    return _windowed(session, ScheduleOverride, schedule, start, end, page)


def get_override(session: Session, schedule: Schedule, override_id: int) -> ScheduleOverride:
    """One override of `schedule`, or NotFound."""
    return get_or_not_found(session, ScheduleOverride, override_id,
                            f"override {override_id} not found in schedule {schedule.name}",
                            lambda row: row.schedule_id == schedule.id)


def create_override(session: Session, schedule: Schedule, *, user: User | int, starts_at, ends_at,
                    reason: str = "", now: datetime | None = None) -> ScheduleOverride:
    """Add temporary cover for an active user. Overrides may overlap anything; the newest wins."""
    errors: dict = {}
    user = lookup_active_user(session, user, "user_id", errors)
    start, end = _window(starts_at, ends_at, errors)
    reason = clean_text(reason, "reason", errors, max_len=500, required=False)
    raise_if(errors, "invalid override")
    override = ScheduleOverride(schedule_id=schedule.id, user_id=user.id, starts_at=start, ends_at=end,
                                reason=reason, created_at=now or utcnow())
    session.add(override)
    session.flush()
    record_audit(session, action="schedule_override.created", object_type="schedule_override",
                 object_id=override.id, after=snapshot(override, *OVERRIDE_AUDIT_FIELDS))
    return override


def delete_override(session: Session, override: ScheduleOverride) -> None:
    """Delete an override (the layers beneath it show through again)."""
    before = snapshot(override, "id", *OVERRIDE_AUDIT_FIELDS)
    session.delete(override)
    session.flush()
    record_audit(session, action="schedule_override.deleted", object_type="schedule_override",
                 object_id=before["id"], before=before)


# --- rotations ---------------------------------------------------------------------------

def get_rotation(session: Session, schedule: Schedule, rotation_id: int) -> Rotation:
    """One rotation of `schedule`, or NotFound."""
    return get_or_not_found(session, Rotation, rotation_id,
                            f"rotation {rotation_id} not found in schedule {schedule.name}",
                            lambda row: row.schedule_id == schedule.id)


def _rotation_fields(errors: dict, *, name=UNSET, shift_length=UNSET, shift_unit=UNSET, handoff_time=UNSET,
                     start_date=UNSET, current: Rotation | None = None) -> dict:
    values = {}
    if name is not UNSET:
        values["name"] = clean_text(name, "name", errors, max_len=120, required=False)
    if shift_unit is not UNSET:
        if shift_unit not in SHIFT_UNITS:
            errors["shift_unit"] = f"must be one of {', '.join(SHIFT_UNITS)}"
        else:
            values["shift_unit"] = shift_unit
    unit = values.get("shift_unit", current.shift_unit if current else "weeks")
    if shift_length is not UNSET:
        values["shift_length"] = clean_int(shift_length, "shift_length", errors, minimum=1,
                                           maximum=MAX_SHIFT_LENGTH.get(unit, 52))
    if handoff_time is not UNSET:
        values["handoff_time"] = clean_time_of_day(handoff_time, "handoff_time", errors)
    if start_date is not UNSET:
        values["start_date"] = clean_date(start_date, "start_date", errors)
    return values


def create_rotation(session: Session, schedule: Schedule, *, start_date: date | str, name: str = "",
                    shift_length: int = 1, shift_unit: str = "weeks", handoff_time: str = "09:00",
                    participants: list | None = None, now: datetime | None = None) -> Rotation:
    """Create a rotation: participants take turns of `shift_length` `shift_unit`s.

    The first turn starts on `start_date` at `handoff_time`, both in the schedule's zone.
    `participants` is an ordered list of active users (instances or ids); the same person
    may appear more than once (e.g. to weight a turn order).
    """
    errors: dict = {}
    values = _rotation_fields(errors, name=name, shift_length=shift_length, shift_unit=shift_unit,
                              handoff_time=handoff_time, start_date=start_date)
    users = [lookup_active_user(session, p, f"participants[{i}]", errors)
             for i, p in enumerate(participants or [])]
    raise_if(errors, "invalid rotation")
    rotation = Rotation(schedule_id=schedule.id, created_at=now or utcnow(), **values)
    session.add(rotation)
    session.flush()
    for position, user in enumerate(users):
        session.add(RotationParticipant(rotation_id=rotation.id, user_id=user.id, position=position))
    session.flush()
    session.refresh(rotation, ["participants"])
    record_audit(session, action="rotation.created", object_type="rotation", object_id=rotation.id,
                 after={**snapshot(rotation, *ROTATION_AUDIT_FIELDS), "participants": _turn_order(rotation)})
    return rotation


def update_rotation(session: Session, rotation: Rotation, *, name=UNSET, shift_length=UNSET, shift_unit=UNSET,
                    handoff_time=UNSET, start_date=UNSET) -> Rotation:
    """Change a rotation's settings; only the given fields change."""
    errors: dict = {}
    values = _rotation_fields(errors, name=name, shift_length=shift_length, shift_unit=shift_unit,
                              handoff_time=handoff_time, start_date=start_date, current=rotation)
    unit = values.get("shift_unit", rotation.shift_unit)
    length = values.get("shift_length", rotation.shift_length)
    if "shift_length" not in errors and length is not None and length > MAX_SHIFT_LENGTH[unit]:
        errors["shift_length"] = f"must be at most {MAX_SHIFT_LENGTH[unit]}"
    raise_if(errors, "invalid rotation")
    before = snapshot(rotation, *ROTATION_AUDIT_FIELDS)
    for key, value in values.items():
        setattr(rotation, key, value)
    session.flush()
    record_audit(session, action="rotation.updated", object_type="rotation", object_id=rotation.id, before=before,
                 after=snapshot(rotation, *ROTATION_AUDIT_FIELDS))
    return rotation


def delete_rotation(session: Session, rotation: Rotation) -> None:
    """Delete a rotation and its participants."""
    before = {**snapshot(rotation, "id", *ROTATION_AUDIT_FIELDS), "participants": _turn_order(rotation)}
    session.delete(rotation)
    session.flush()
    record_audit(session, action="rotation.deleted", object_type="rotation", object_id=before["id"], before=before)


def add_rotation_participant(session: Session, rotation: Rotation, user: User | int) -> RotationParticipant:
    """Append an active user to the end of the rotation's turn order."""
    errors: dict = {}
    user = lookup_active_user(session, user, "user_id", errors)
    raise_if(errors, "invalid rotation participant")
    position = session.scalar(select(func.coalesce(func.max(RotationParticipant.position) + 1, 0))
                              .where(RotationParticipant.rotation_id == rotation.id))
    participant = RotationParticipant(rotation_id=rotation.id, user_id=user.id, position=position)
    # The position key is unique: a conflict means someone else appended at the same moment.
    with unique_or_conflict(session, "the rotation changed at the same time; try again"):
        session.add(participant)
    session.refresh(rotation, ["participants"])
    record_audit(session, action="rotation.participant_added", object_type="rotation", object_id=rotation.id,
                 after={"participant_id": participant.id, "user_id": user.id, "position": position})
    return participant


def remove_rotation_participant(session: Session, rotation: Rotation, participant_id: int) -> None:
    """Remove one participant; the turn order closes up over the people who remain."""
    participant = (session.get(RotationParticipant, participant_id)
                   if isinstance(participant_id, int) else None)
    if participant is None or participant.rotation_id != rotation.id:
        raise NotFound(f"participant {participant_id} not found in rotation {rotation.id}")
    before = {"participant_id": participant.id, "user_id": participant.user_id, "position": participant.position}
    session.delete(participant)
    session.flush()
    session.refresh(rotation, ["participants"])
    record_audit(session, action="rotation.participant_removed", object_type="rotation", object_id=rotation.id,
                 before=before)


def set_rotation_participants(session: Session, rotation: Rotation, users: list) -> Rotation:
    """Replace the rotation's turn order with `users` (active users, instances or ids)."""
    errors: dict = {}
    found = [lookup_active_user(session, u, f"participants[{i}]", errors) for i, u in enumerate(users or [])]
    raise_if(errors, "invalid rotation participants")
    before = {"participants": _turn_order(rotation)}
    for participant in list(rotation.participants):
        session.delete(participant)
    # The old positions must be gone before the new ones reuse them (unique per rotation).
    session.flush()
    for position, user in enumerate(found):
        session.add(RotationParticipant(rotation_id=rotation.id, user_id=user.id, position=position))
    session.flush()
    session.refresh(rotation, ["participants"])
    record_audit(session, action="rotation.participants_set", object_type="rotation", object_id=rotation.id,
                 before=before, after={"participants": _turn_order(rotation)})
    return rotation
