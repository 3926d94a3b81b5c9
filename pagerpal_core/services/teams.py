"""Teams and their memberships. Only active users can be added to a team.

A team groups people and owns schedules and escalation policies; an escalation target of
type "team" pages whoever is on call in the team's schedules.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pagerpal_core.db import Keyset, get_or_not_found, unique_or_conflict
from pagerpal_core.errors import NotFound
from pagerpal_core.models import Team, TeamMembership, User
from pagerpal_core.security import mask_destination
from pagerpal_core.services.audit import record_audit, snapshot
from pagerpal_core.services.validation import UNSET, clean_text, lookup_active_user, raise_if
from pagerpal_core.timeutil import utcnow


def get_team(session: Session, team_id: int) -> Team:
    """The team with `team_id`, or NotFound."""
    return get_or_not_found(session, Team, team_id, f"team {team_id} not found")


def list_teams(session: Session, *, page: Keyset | None = None) -> list[Team]:
    """Every team with its members loaded, by name (by id for a keyset `page`)."""
    query = select(Team).options(selectinload(Team.memberships).selectinload(TeamMembership.user))
    if page is not None:
        return list(session.scalars(page.apply(query, Team.id)))
    return list(session.scalars(query.order_by(Team.name)))


def create_team(session: Session, *, name: str, description: str = "", now: datetime | None = None) -> Team:
    """Create a team; a duplicate name is a Conflict."""
    errors: dict = {}
    name = clean_text(name, "name", errors, max_len=120)
    description = clean_text(description, "description", errors, max_len=1000, required=False)
    raise_if(errors, "invalid team")
    team = Team(name=name, description=description, created_at=now or utcnow())
    with unique_or_conflict(session, f"a team named {name} already exists", fields={"name": "already in use"}):
        session.add(team)
    record_audit(session, action="team.created", object_type="team", object_id=team.id,
                 after=snapshot(team, "name", "description"))
    return team


def update_team(session: Session, team: Team, *, name=UNSET, description=UNSET, webhook_url=UNSET,
                webhook_format=UNSET) -> Team:
    """Rename or re-describe a team, or set its chat webhook (`webhook_url` None clears it; format
    "slack" or "json"); only the given fields change, nothing changes when any is invalid."""
    from pagerpal_core.services.webhooks import webhook_format_problem, webhook_url_problem

    errors: dict = {}
    new_name = clean_text(name, "name", errors, max_len=120) if name is not UNSET else team.name
    new_description = (clean_text(description, "description", errors, max_len=1000, required=False)
                       if description is not UNSET else team.description)
    new_url = team.webhook_url if webhook_url is UNSET else (webhook_url or None)
    if webhook_url is not UNSET and webhook_url not in (None, ""):
        problem = webhook_url_problem(webhook_url)
        if problem:
            errors["webhook_url"] = problem
        else:
            new_url = webhook_url.strip()
    new_format = team.webhook_format if webhook_format is UNSET else (webhook_format or None)
    if webhook_format is not UNSET and webhook_format_problem(webhook_format):
        errors["webhook_format"] = webhook_format_problem(webhook_format)
    raise_if(errors, "invalid team")
    # The webhook URL's path is a credential: the audit row records it masked.
    before = {**snapshot(team, "name", "description"), "webhook_url": mask_destination(team.webhook_url)}
    with unique_or_conflict(session, f"a team named {new_name} already exists", fields={"name": "already in use"}):
        team.name, team.description = new_name, new_description
        team.webhook_url, team.webhook_format = new_url, new_format
    record_audit(session, action="team.updated", object_type="team", object_id=team.id, before=before,
                 after={**snapshot(team, "name", "description"), "webhook_url": mask_destination(team.webhook_url)})
    return team


def delete_team(session: Session, team: Team) -> None:
    """Delete a team with its memberships; refused while schedules, policies or incidents use it."""
    before = snapshot(team, "id", "name", "description")
    with unique_or_conflict(session, f"team {team.name} is still used by schedules, escalation policies, "
                            "alert sources or incidents; detach them first"):
        session.delete(team)
    record_audit(session, action="team.deleted", object_type="team", object_id=before["id"], before=before)


def add_team_member(session: Session, team: Team, user: User | int, *,
                    now: datetime | None = None) -> TeamMembership:
    """Add an active user to `team`; adding a member twice is a Conflict."""
    errors: dict = {}
    user = lookup_active_user(session, user, "user_id", errors)
    raise_if(errors, "invalid team member")
    membership = TeamMembership(team_id=team.id, user_id=user.id, created_at=now or utcnow())
    with unique_or_conflict(session, f"{user.name} is already a member of {team.name}",
                            fields={"user_id": "already a member"}):
        session.add(membership)
    record_audit(session, action="team.member_added", object_type="team", object_id=team.id,
                 after={"user_id": user.id})
    return membership


def remove_team_member(session: Session, team: Team, user: User | int) -> None:
    """Remove a user from `team`; NotFound when they are not a member."""
    user_id = user.id if isinstance(user, User) else user
    membership = session.scalar(select(TeamMembership).where(
        TeamMembership.team_id == team.id, TeamMembership.user_id == user_id))
    if membership is None:
        raise NotFound(f"user {user_id} is not a member of team {team.name}")
    session.delete(membership)
    session.flush()
    record_audit(session, action="team.member_removed", object_type="team", object_id=team.id,
                 before={"user_id": user_id})


def list_team_members(session: Session, team: Team, *, active_only: bool = False) -> list[User]:
    """The team's members by name (inactive ones kept unless `active_only`)."""
    query = (select(User).join(TeamMembership, TeamMembership.user_id == User.id)
             .where(TeamMembership.team_id == team.id).order_by(User.name, User.id))
    if active_only:
        query = query.where(User.active.is_(True))
    return list(session.scalars(query))
