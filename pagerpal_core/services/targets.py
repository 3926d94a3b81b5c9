"""Target resolution: who one escalation level pages at a given instant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from pagerpal_core.models import EscalationLevel, Schedule, Team, User
from pagerpal_core.services.oncall import team_on_call, who_is_on_call


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
        elif target.target_type == "team_webhook":
            continue  # a chat room, not a person: paged by webhooks.page_team_webhooks
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
