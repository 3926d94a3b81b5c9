"""On-call coverage at a glance: who is on call now in each schedule, and where nobody is.

The dashboard's "On call now" card, the gap warnings on a schedule's page and on the
dashboard, and a user's own upcoming shifts all come from here; the web only renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pagerpal_core.models import EscalationTarget, Schedule, User
from pagerpal_core.services.getting_started import Checklist, getting_started
from pagerpal_core.services.oncall import Shift, shifts_between, user_shifts_between, who_is_on_call
from pagerpal_core.timeutil import as_utc

GAP_HORIZON = timedelta(days=14)
MY_SHIFTS_HORIZON = timedelta(days=28)


@dataclass(frozen=True)
class Gap:
    """A stretch of time in which nobody is on call for a schedule."""

    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        """The gap's length in hours."""
        return (self.end - self.start).total_seconds() / 3600


@dataclass(frozen=True)
class OnCallNow:
    """One schedule's row of the "On call now" card: the shift (None: nobody) and the person's channels."""

    schedule: Schedule
    shift: Shift | None
    channels: list[str]


@dataclass(frozen=True)
class ScheduleGaps:
    """A schedule with the gaps in its coverage over the horizon."""

    schedule: Schedule
    gaps: list[Gap]


@dataclass(frozen=True)
class UpcomingShift:
    """One of a person's shifts with its schedule (for the name and the zone)."""

    shift: Shift
    schedule: Schedule


@dataclass
class AtAGlance:
    """What the dashboard shows besides incidents: the checklist, who is on call, coverage gaps."""

    checklist: Checklist
    on_call: list[OnCallNow] = field(default_factory=list)
    gaps: list[ScheduleGaps] = field(default_factory=list)


def schedule_gaps(session: Session, schedule: Schedule, start: datetime, end: datetime) -> list[Gap]:
    """The stretches of [start, end) when nobody is on call for `schedule`, in time order."""
    start, end = as_utc(start), as_utc(end)
    gaps, cursor = [], start
    for shift in shifts_between(session, schedule, start, end):
        if shift.start > cursor:
            gaps.append(Gap(cursor, shift.start))
        cursor = max(cursor, shift.end)
    if cursor < end:
        gaps.append(Gap(cursor, end))
    return gaps


def reachable_channels(user: User) -> list[str]:
    """The distinct channels `user` can be paged on (enabled contact methods), in their order."""
    seen: list[str] = []
    for method in user.contact_methods:
        if method.enabled and method.channel not in seen:
            seen.append(method.channel)
    return seen


def on_call_now(session: Session, *, now: datetime) -> list[OnCallNow]:
    """Every schedule, by name, with whoever is on call at `now` and how they can be reached."""
    rows = []
    for schedule in session.scalars(select(Schedule).order_by(Schedule.name, Schedule.id)):
        shift = who_is_on_call(session, schedule, now)
        rows.append(OnCallNow(schedule, shift, reachable_channels(shift.user) if shift else []))
    return rows


def schedules_used_by_policies(session: Session) -> list[Schedule]:
    """Schedules an escalation level pages, directly or through its team, by name."""
    direct = select(EscalationTarget.schedule_id).where(EscalationTarget.schedule_id.is_not(None))
    # A team_webhook target posts to the team's chat; it does not page the team's schedules.
    via_team = select(EscalationTarget.team_id).where(EscalationTarget.team_id.is_not(None),
                                                      EscalationTarget.target_type == "team")
    return list(session.scalars(select(Schedule).where(or_(Schedule.id.in_(direct), Schedule.team_id.in_(via_team)))
                                .order_by(Schedule.name, Schedule.id)))


def policy_schedule_gaps(session: Session, *, now: datetime, horizon: timedelta = GAP_HORIZON) -> list[ScheduleGaps]:
    """Schedules used by a policy that have gaps in [now, now + horizon): pages there would reach nobody."""
    out = []
    for schedule in schedules_used_by_policies(session):
        gaps = schedule_gaps(session, schedule, now, now + horizon)
        if gaps:
            out.append(ScheduleGaps(schedule, gaps))
    return out


def my_shifts(session: Session, user: User, *, now: datetime,
              horizon: timedelta = MY_SHIFTS_HORIZON) -> list[UpcomingShift]:
    """`user`'s shifts from `now` over the horizon (four weeks), across all schedules, in time order."""
    shifts = user_shifts_between(session, user, now, now + horizon)
    return [UpcomingShift(shift, session.get(Schedule, shift.schedule_id)) for shift in shifts]


def at_a_glance(session: Session, *, now: datetime) -> AtAGlance:
    """The dashboard's checklist, "On call now" card and coverage gaps of schedules used by a policy."""
    return AtAGlance(checklist=getting_started(session), on_call=on_call_now(session, now=now),
                     gaps=policy_schedule_gaps(session, now=now))

