"""/api/v1/teams and /teams/<id>/members."""

from functools import partial

from flask import jsonify

from pagerpal_core.models import Team
from pagerpal_core.security import mask_destination
from pagerpal_core.services.teams import (
    add_team_member,
    create_team,
    delete_team,
    get_team,
    list_team_members,
    remove_team_member,
    update_team,
)
from pagerpal_core.services.teams import list_teams as fetch_teams
from pagerpal_core.timeutil import utcnow
from pagerpal_web.api import bp
from pagerpal_web.api.common import body_fields, created, no_content, paginate, ts
from pagerpal_web.api.users import user_ref
from pagerpal_web.extensions import db


def serialize_team(team: Team) -> dict:
    """A team as JSON with its members."""
    return {"id": team.id, "name": team.name, "description": team.description,
            "members": [user_ref(m.user) for m in team.memberships], "created_at": ts(team.created_at),
            # The webhook URL's path is its credential: shown masked, like a key after creation.
            "webhook_url": mask_destination(team.webhook_url) or None,
            "webhook_format": team.webhook_format}


@bp.get("/teams")
def list_teams():
    """Teams by id, paginated."""
    return jsonify(paginate(partial(fetch_teams, db.session), "api.list_teams", serialize_team))


@bp.post("/teams")
def create_team_view():
    """Create a team."""
    data = body_fields({"name", "description"}, needed=("name",))
    team = create_team(db.session, name=data["name"], description=data.get("description", ""), now=utcnow())
    db.session.commit()
    return created(serialize_team(team), "api.read_team", team_id=team.id)


@bp.get("/teams/<int:team_id>")
def read_team(team_id: int):
    """One team with its members."""
    return jsonify(serialize_team(get_team(db.session, team_id)))


@bp.patch("/teams/<int:team_id>")
def update_team_view(team_id: int):
    """Rename or re-describe a team, or set its chat webhook (webhook_url, webhook_format)."""
    data = body_fields({"name", "description", "webhook_url", "webhook_format"})
    team = update_team(db.session, get_team(db.session, team_id), **data)
    db.session.commit()
    return jsonify(serialize_team(team))


@bp.delete("/teams/<int:team_id>")
def delete_team_view(team_id: int):
    """Delete a team no schedule, policy, source or incident uses (409 otherwise)."""
    delete_team(db.session, get_team(db.session, team_id))
    db.session.commit()
    return no_content()


@bp.get("/teams/<int:team_id>/members")
def list_members(team_id: int):
    """The team's members by name."""
    return jsonify(items=[user_ref(u) for u in list_team_members(db.session, get_team(db.session, team_id))])


@bp.post("/teams/<int:team_id>/members")
def add_member(team_id: int):
    """Add an active user to the team (409 when already a member)."""
    team = get_team(db.session, team_id)
    data = body_fields({"user_id"}, needed=("user_id",))
    membership = add_team_member(db.session, team, data["user_id"], now=utcnow())
    db.session.commit()
    return created(user_ref(membership.user), "api.list_members", team_id=team.id)


@bp.delete("/teams/<int:team_id>/members/<int:user_id>")
def remove_member(team_id: int, user_id: int):
    """Take a user out of the team."""
    remove_team_member(db.session, get_team(db.session, team_id), user_id)
    db.session.commit()
    return no_content()
