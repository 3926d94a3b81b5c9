"""Who would a policy page at instant T, and why: the simulator behind /simulate, the policy page and the CLI.

For each level, in order: its delay, and the people it would page at T, each with the reason —
named on the level, or on call in a schedule (directly or through a team) by a rotation turn,
an explicit entry, or an override, with the time that turn/entry/override ends.

Who is paged is decided by the engine's own `targets.resolve_targets` (called, not copied), so
the simulation cannot disagree with a real page; the reasons come from `oncall.who_is_on_call`,
the same resolution resolve_targets uses underneath. Both work in UTC with each schedule's
IANA zone, so the answer is right on either side of a DST change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pagerpal_core.errors import Invalid
from pagerpal_core.models import EscalationLevel, EscalationPolicy, Schedule, Team, User
from pagerpal_core.services.oncall import Shift, who_is_on_call
from pagerpal_core.services.targets import resolve_targets
from pagerpal_core.timeutil import as_utc

# The instants a simulation may ask about: wide enough for any real question, and far from the
# ends of Python's calendar, where rotation arithmetic would overflow.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

# How each layer reads in a sentence ("override until 13:00 CET").
LAYER_WORDS = {"override": "override", "entry": "scheduled shift", "rotation": "rotation turn"}


@dataclass(frozen=True)
class Reach:
    """One person a level reaches at the simulated instant, and why."""

    user: User
    reason: str                      # "user", "override", "entry", "rotation"
    via: str                         # "user", "schedule Primary", "team ops"
    schedule: Schedule | None = None
    team: Team | None = None
    until: datetime | None = None    # end of the override / entry / rotation turn (UTC)
    source_id: int | None = None     # the override, entry or rotation row

    def until_local(self, at: datetime) -> str | None:
        """`until` on the schedule's clock, e.g. "13:00 CET" (with the date when not the day of `at`)."""
        if self.until is None or self.schedule is None:
            return None
        zone = ZoneInfo(self.schedule.timezone or "UTC")
        local, start = self.until.astimezone(zone), at.astimezone(zone)
        return local.strftime("%H:%M %Z" if local.date() == start.date() else "%a %d %b %H:%M %Z")

    def explain(self, at: datetime) -> str:
        """The reason as words: "override until 13:00 CET, schedule Primary"."""
        if self.reason == "user":
            return "named on the level"
        words = LAYER_WORDS.get(self.reason, self.reason)
        until = self.until_local(at)
        where = f"schedule {self.schedule.name}" if self.schedule else ""
        if self.team is not None:
            where = f"team {self.team.name}, {where}"
        return f"{words}{f' until {until}' if until else ''}, {where}".rstrip(", ")


@dataclass
class SimulatedLevel:
    """One level of the simulation: its delay and who it reaches at the instant."""

    level: EscalationLevel
    reaches: list[Reach] = field(default_factory=list)

    @property
    def level_number(self) -> int:
        """The simulated level's number."""
        return self.level.level_number

    @property
    def delay_minutes(self) -> int:
        """Minutes after the incident opens that this level is paged."""
        return self.level.delay_minutes


@dataclass
class Simulation:
    """Who `policy` would page at `at`, level by level."""

    policy: EscalationPolicy
    at: datetime
    levels: list[SimulatedLevel]

    def summary(self, level_index: int = 0) -> str:
        """"Ada (override until 13:00 CET, schedule Primary)" for one level; "nobody" when empty."""
        if level_index >= len(self.levels) or not self.levels[level_index].reaches:
            return "nobody"
        return ", ".join(f"{r.user.name} ({r.explain(self.at)})" for r in self.levels[level_index].reaches)


def _shift_reach(user_id: int, shift: Shift | None, schedule: Schedule, team: Team | None) -> Reach | None:
    if shift is None or shift.user_id != user_id:
        return None
    via = f"team {team.name}" if team is not None else f"schedule {schedule.name}"
    return Reach(shift.user, shift.layer, via, schedule=schedule, team=team, until=shift.end,
                 source_id=shift.source_id)


def _explain(session: Session, level: EscalationLevel, user: User, at: datetime) -> Reach:
    """Why `level` reaches `user` at `at`: the first of its targets that puts them there."""
    for target in level.targets:
        if target.target_type == "user" and target.user_id == user.id:
            return Reach(user, "user", "user")
        if target.target_type == "schedule":
            schedule = session.get(Schedule, target.schedule_id)
            if schedule is not None:
                reach = _shift_reach(user.id, who_is_on_call(session, schedule, at), schedule, None)
                if reach is not None:
                    return reach
        if target.target_type == "team":
            team = session.get(Team, target.team_id)
            schedules = session.scalars(select(Schedule).where(Schedule.team_id == target.team_id)
                                        .order_by(Schedule.id)) if team is not None else []
            for schedule in schedules:
                reach = _shift_reach(user.id, who_is_on_call(session, schedule, at), schedule, team)
                if reach is not None:
                    return reach
    return Reach(user, "unknown", "?")  # resolve_targets found them; nothing here can say why


def simulate_policy(session: Session, policy: EscalationPolicy, at: datetime) -> Simulation:
    """Who each level of `policy` would page at instant `at` (aware or naive-UTC), with reasons.

    An instant before 1970 or from 2200 on is Invalid, naming `at`.
    """
    at = as_utc(at)
    if not EARLIEST <= at < LATEST:
        raise Invalid("invalid instant", fields={"at": f"must be from {EARLIEST:%Y} to {LATEST.year - 1}"})
    levels = session.scalars(select(EscalationLevel).where(EscalationLevel.policy_id == policy.id)
                             .options(selectinload(EscalationLevel.targets)).order_by(EscalationLevel.level_number))
    out = []
    for level in levels:
        people = resolve_targets(session, level, at)
        out.append(SimulatedLevel(level, [_explain(session, level, r.user, at) for r in people]))
    return Simulation(policy, at, out)


def simulate_policies(session: Session, at: datetime) -> list[Simulation]:
    """Every policy's simulation at `at`, by policy name (the CLI without --policy)."""
    policies = session.scalars(select(EscalationPolicy).order_by(EscalationPolicy.name, EscalationPolicy.id))
    return [simulate_policy(session, policy, at) for policy in policies]
