"""Who is on call: a schedule's layers resolved into one list of shifts.

Layers, strongest first:

1. overrides — temporary cover; where overrides overlap each other the most recently
   created one wins;
2. entries — explicit shifts (never overlapping one another);
3. rotations — participants taking turns; where a schedule has several rotations, the
   most recently created one that has started wins (so a new rotation starting next
   Monday replaces the old one from then on).

A row whose user is inactive is skipped, so the layer beneath shows through; a rotation
turn whose participant is inactive goes to the next active participant in order.

Rotation arithmetic: turns of `days` or `weeks` are calendar days in the schedule's zone,
so a 09:00 handoff stays at 09:00 local time across DST changes (a turn is 23 or 25 hours
long on those days). Turns of `hours` are elapsed time: every turn lasts exactly N hours.
A handoff that falls in a spring-forward gap happens at the same offset before the gap
(02:30 on the missing hour reads as 03:30); an ambiguous one uses its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from pagerpal_core.errors import Invalid
from pagerpal_core.models import Rotation, RotationParticipant, Schedule, ScheduleEntry, ScheduleOverride, Team, User
from pagerpal_core.timeutil import as_utc

# The longest window one call may expand: 400 days of hourly turns is ~10k shifts per rotation.
MAX_WINDOW = timedelta(days=400)


@dataclass(frozen=True)
class Shift:
    """A stretch of time during which `user` is on call for `schedule_id`.

    `layer` says which layer put them there ("override", "entry" or "rotation") and
    `source_id` which row (override, entry or rotation id). In a shift list, `start`/`end`
    are the visible part within the requested window.
    """

    schedule_id: int
    user_id: int
    user: User
    start: datetime
    end: datetime
    layer: str
    source_id: int


@dataclass(frozen=True)
class _Piece:
    start: datetime
    end: datetime
    user: User
    layer: str
    source_id: int
    item_start: datetime
    item_end: datetime


# --- rotation arithmetic -----------------------------------------------------------------

def _handoff(rotation: Rotation) -> time:
    hour, minute = (int(p) for p in (rotation.handoff_time or "00:00").split(":"))
    return time(hour, minute)


def _local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    # fold=0: an ambiguous wall time takes its first occurrence; a nonexistent one keeps
    # the offset from before the gap (see the module docstring).
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def turn_start(rotation: Rotation, zone: ZoneInfo, k: int) -> datetime:
    """When turn `k` (0 = the first) of `rotation` begins, in UTC."""
    first = _local_instant(rotation.start_date, _handoff(rotation), zone)
    if rotation.shift_unit == "hours":
        return first + timedelta(hours=k * rotation.shift_length)
    days = k * rotation.shift_length * (7 if rotation.shift_unit == "weeks" else 1)
    return _local_instant(rotation.start_date + timedelta(days=days), _handoff(rotation), zone)


def _nominal(rotation: Rotation) -> timedelta:
    per = {"hours": timedelta(hours=1), "days": timedelta(days=1), "weeks": timedelta(weeks=1)}
    return per[rotation.shift_unit] * rotation.shift_length


def turn_index(rotation: Rotation, zone: ZoneInfo, at: datetime) -> int:
    """The turn in progress at `at` (negative before the rotation starts)."""
    first = turn_start(rotation, zone, 0)
    k = int((at - first) // _nominal(rotation))
    # The nominal length is off by an hour around DST changes: step to the exact turn.
    while turn_start(rotation, zone, k) > at:
        k -= 1
    while turn_start(rotation, zone, k + 1) <= at:
        k += 1
    return k


def _participant_for_turn(participants: list[RotationParticipant], users: dict[int, User],
                          k: int) -> User | None:
    # Slot k belongs to participant k mod n; an inactive one's turn goes to the next
    # active participant in order, so nobody else's turns move and there is no hole.
    n = len(participants)
    for step in range(n):
        user = users.get(participants[(k + step) % n].user_id)
        if user is not None and user.active:
            return user
    return None


def _rotation_pieces(rotation: Rotation, zone: ZoneInfo, users: dict[int, User], start: datetime,
                     end: datetime) -> list[_Piece]:
    participants = list(rotation.participants)
    if not participants:
        return []
    k = max(0, turn_index(rotation, zone, start))
    pieces = []
    turn_begin = turn_start(rotation, zone, k)
    while turn_begin < end:
        turn_end = turn_start(rotation, zone, k + 1)
        user = _participant_for_turn(participants, users, k)
        if user is not None and turn_end > start:
            pieces.append(_Piece(max(turn_begin, start), min(turn_end, end), user, "rotation", rotation.id,
                                 turn_begin, turn_end))
        k, turn_begin = k + 1, turn_end
    return pieces


# --- layering ----------------------------------------------------------------------------

def _overlay(base: list[_Piece], top: list[_Piece]) -> list[_Piece]:
    """`base` with `top` painted over it. Both sorted and non-overlapping; so is the result."""
    if not top:
        return base
    out: list[_Piece] = []
    j = 0
    for piece in base:
        cursor = piece.start
        # Skip top pieces that end before this base piece starts.
        while j < len(top) and top[j].end <= piece.start:
            j += 1
        i = j
        while i < len(top) and top[i].start < piece.end and cursor < piece.end:
            if top[i].start > cursor:
                out.append(_replace(piece, cursor, top[i].start))
            cursor = max(cursor, top[i].end)
            i += 1
        if cursor < piece.end:
            out.append(_replace(piece, cursor, piece.end))
    out.extend(top)
    out.sort(key=lambda p: p.start)
    return out


def _replace(piece: _Piece, start: datetime, end: datetime) -> _Piece:
    return _Piece(start, end, piece.user, piece.layer, piece.source_id, piece.item_start, piece.item_end)


def _merge(pieces: list[_Piece]) -> list[_Piece]:
    """Join touching pieces of the same user from the same row (e.g. one-person rotations)."""
    out: list[_Piece] = []
    for piece in pieces:
        last = out[-1] if out else None
        if (last is not None and last.end == piece.start and last.user.id == piece.user.id
                and last.layer == piece.layer and last.source_id == piece.source_id):
            out[-1] = _Piece(last.start, piece.end, last.user, last.layer, last.source_id,
                             min(last.item_start, piece.item_start), max(last.item_end, piece.item_end))
        else:
            out.append(piece)
    return out


def _check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise Invalid("invalid window", fields={"end": "must be after start"})
    if end - start > MAX_WINDOW:
        raise Invalid("invalid window", fields={"end": f"the window may span at most {MAX_WINDOW.days} days"})
    return start, end


def _pieces(session: Session, schedule: Schedule, start: datetime, end: datetime) -> list[_Piece]:
    zone = ZoneInfo(schedule.timezone or "UTC")
    rotations = list(session.scalars(
        select(Rotation).where(Rotation.schedule_id == schedule.id)
        .options(selectinload(Rotation.participants)).order_by(Rotation.created_at, Rotation.id)))
    entries = list(session.scalars(select(ScheduleEntry).where(
        ScheduleEntry.schedule_id == schedule.id, ScheduleEntry.starts_at < end,
        ScheduleEntry.ends_at > start)
        .order_by(ScheduleEntry.starts_at)))
    overrides = list(session.scalars(select(ScheduleOverride).where(
        ScheduleOverride.schedule_id == schedule.id, ScheduleOverride.starts_at < end,
        ScheduleOverride.ends_at > start).order_by(ScheduleOverride.created_at, ScheduleOverride.id)))
    user_ids = {e.user_id for e in entries} | {o.user_id for o in overrides}
    user_ids |= {p.user_id for r in rotations for p in r.participants}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))} if user_ids else {}

    timeline: list[_Piece] = []
    # Rotations, oldest first, so a newer rotation paints over an older one from its start.
    for rotation in rotations:
        timeline = _overlay(timeline, _rotation_pieces(rotation, zone, users, start, end))
    # Entries never overlap one another, so they go on as one layer.
    timeline = _overlay(timeline, [
        _Piece(max(e.starts_at, start), min(e.ends_at, end), users[e.user_id], "entry", e.id,
               e.starts_at, e.ends_at)
        for e in entries if users.get(e.user_id) is not None and users[e.user_id].active])
    # Overrides oldest first: each newer one paints over the older ones it overlaps.
    for o in overrides:
        user = users.get(o.user_id)
        if user is not None and user.active:
            timeline = _overlay(timeline, [_Piece(max(o.starts_at, start), min(o.ends_at, end), user,
                                                  "override", o.id, o.starts_at, o.ends_at)])
    return _merge(timeline)


def _shift(schedule: Schedule, piece: _Piece, *, full: bool = False) -> Shift:
    return Shift(schedule_id=schedule.id, user_id=piece.user.id, user=piece.user,
                 start=piece.item_start if full else piece.start, end=piece.item_end if full else piece.end,
                 layer=piece.layer, source_id=piece.source_id)


# --- public ------------------------------------------------------------------------------

def shifts_between(session: Session, schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    """The schedule's resolved shifts in [start, end), in time order, each with its layer.

    Gaps (nobody on call) are simply absent. Shifts are clipped to the window. The window
    may span at most MAX_WINDOW; a reversed or empty window is Invalid.
    """
    start, end = _check_window(start, end)
    return [_shift(schedule, piece) for piece in _pieces(session, schedule, start, end)]


def who_is_on_call(session: Session, schedule: Schedule, at: datetime) -> Shift | None:
    """The shift covering instant `at`, or None when nobody is on call.

    `start`/`end` of the result are those of the row that puts the person there (the
    override, the entry, or the rotation turn).
    """
    at = as_utc(at)
    pieces = _pieces(session, schedule, at, at + timedelta(microseconds=1))
    return _shift(schedule, pieces[0], full=True) if pieces else None


def on_call_users(session: Session, schedules: list[Schedule], at: datetime) -> list[User]:
    """The distinct people on call at `at` across `schedules`, in schedule order."""
    seen: dict[int, User] = {}
    for schedule in schedules:
        shift = who_is_on_call(session, schedule, at)
        if shift is not None:
            seen.setdefault(shift.user_id, shift.user)
    return list(seen.values())


def team_on_call(session: Session, team: Team, at: datetime) -> list[User]:
    """Whoever is on call at `at` in any of the team's schedules."""
    schedules = list(session.scalars(
        select(Schedule).where(Schedule.team_id == team.id).order_by(Schedule.id)))
    return on_call_users(session, schedules, at)


def user_shifts_between(session: Session, user: User, start: datetime, end: datetime) -> list[Shift]:
    """Every shift `user` holds in [start, end) across all schedules, in time order."""
    start, end = _check_window(start, end)
    schedule_ids = set(session.scalars(
        select(Schedule.id).where(or_(
            Schedule.id.in_(select(ScheduleEntry.schedule_id).where(ScheduleEntry.user_id == user.id)),
            Schedule.id.in_(select(ScheduleOverride.schedule_id).where(ScheduleOverride.user_id == user.id)),
            Schedule.id.in_(select(Rotation.schedule_id).join(RotationParticipant)
                            .where(RotationParticipant.user_id == user.id))))))
    shifts: list[Shift] = []
    schedules = session.scalars(select(Schedule).where(Schedule.id.in_(schedule_ids)).order_by(Schedule.id))
    for schedule in schedules:
        shifts.extend(s for s in shifts_between(session, schedule, start, end) if s.user_id == user.id)
    shifts.sort(key=lambda s: (s.start, s.schedule_id))
    return shifts
