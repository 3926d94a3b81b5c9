"""/teams: teams and their members (who is on call for a team comes from its schedules)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from pagerpal_core.services.escalation_policies import list_policies
from pagerpal_core.services.oncall import team_on_call
from pagerpal_core.services.schedules import list_schedules
from pagerpal_core.services.teams import (
    add_team_member,
    create_team,
    delete_team,
    get_team,
    list_team_members,
    list_teams,
    remove_team_member,
    update_team,
)
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import active_user_choices, form_action, form_status
from pagerpal_web.ui.forms import MemberForm, TeamForm, TeamWebhookForm


def _list_page(form: TeamForm):
    teams = list_teams(db.session)
    now = utcnow()
    on_call = {team.id: team_on_call(db.session, team, now) for team in teams}
    return render_template("teams.html", teams=teams, form=form, on_call=on_call), form_status(form)


@bp.get("/teams")
@login_required_role("viewer")
def teams():
    """Teams with their members and who is on call for each now."""
    return _list_page(TeamForm())


@bp.post("/teams")
@login_required_role("admin")
def create_team_view():
    """Create a team."""
    form = TeamForm()
    return form_action(
        lambda: create_team(db.session, name=form.name.data, description=form.description.data or "",
                            now=utcnow()),
        form=form, page=_list_page, done=lambda team: f"Created team {team.name}.",
        then=lambda team: url_for("ui.team_detail", team_id=team.id))


def _detail_page(team, *, form=None, member_form=None, webhook_form=None):
    form = form or TeamForm(prefix="team", data={"name": team.name, "description": team.description})
    webhook_form = webhook_form or TeamWebhookForm(prefix="webhook", formdata=None,
                                                   data={"webhook_format": team.webhook_format or "slack"})
    member_form = member_form or MemberForm(prefix="member")
    member_form.user_id.choices = active_user_choices(blank="choose…")
    schedules = list_schedules(db.session, team=team)
    policies = list_policies(db.session, team=team)
    status = max(form_status(form), form_status(member_form), form_status(webhook_form))
    return render_template("team_detail.html", team=team, members=list_team_members(db.session, team),
                           form=form, member_form=member_form, schedules=schedules, policies=policies,
                           webhook_form=webhook_form,
                           on_call=team_on_call(db.session, team, utcnow())), status


@bp.get("/teams/<int:team_id>")
@login_required_role("viewer")
def team_detail(team_id: int):
    """A team's members, schedules, policies and who is on call now."""
    return _detail_page(get_team(db.session, team_id))


@bp.post("/teams/<int:team_id>")
@login_required_role("admin")
def update_team_view(team_id: int):
    """Rename or re-describe a team."""
    team = get_team(db.session, team_id)
    form = TeamForm(prefix="team")
    return form_action(
        lambda: update_team(db.session, team, name=form.name.data, description=form.description.data or ""),
        form=form, page=lambda form: _detail_page(team, form=form), done="Team saved.",
        then=url_for("ui.team_detail", team_id=team_id))


@bp.post("/teams/<int:team_id>/webhook")
@login_required_role("admin")
def team_webhook_view(team_id: int):
    """Set or remove the team's chat webhook, which escalation levels may target."""
    team = get_team(db.session, team_id)
    form = TeamWebhookForm(prefix="webhook")
    return form_action(
        lambda: update_team(db.session, team, webhook_url=(form.webhook_url.data or "").strip() or None,
                            webhook_format=form.webhook_format.data),
        form=form, page=lambda form: _detail_page(team, webhook_form=form), done="Team webhook saved.",
        then=url_for("ui.team_detail", team_id=team_id))


@bp.post("/teams/<int:team_id>/members")
@login_required_role("admin")
def add_team_member_view(team_id: int):
    """Add an active user to the team."""
    team = get_team(db.session, team_id)
    form = MemberForm(prefix="member")
    form.user_id.choices = active_user_choices(blank="choose…")
    return form_action(
        lambda: add_team_member(db.session, team, form.user_id.data, now=utcnow()),
        form=form, page=lambda form: _detail_page(team, member_form=form), done="Member added.",
        then=url_for("ui.team_detail", team_id=team_id))


@bp.post("/teams/<int:team_id>/members/<int:user_id>/remove")
@login_required_role("admin")
def remove_team_member_view(team_id: int, user_id: int):
    """Remove a member (their schedule shifts stay)."""
    team = get_team(db.session, team_id)
    remove_team_member(db.session, team, user_id)
    db.session.commit()
    flash("Member removed.", "success")
    return redirect(url_for("ui.team_detail", team_id=team.id), code=303)


@bp.post("/teams/<int:team_id>/delete")
@login_required_role("admin")
def delete_team_view(team_id: int):
    """Delete a team that nothing uses any more."""
    team = get_team(db.session, team_id)
    return form_action(lambda: delete_team(db.session, team), done="Team deleted.", then=url_for("ui.teams"),
                       failed=url_for("ui.team_detail", team_id=team_id))
