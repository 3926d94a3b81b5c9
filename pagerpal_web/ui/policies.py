"""/escalation-policies: ordered levels, each with a delay and the people, schedules or teams it pages."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from pagerpal_core.errors import Invalid
from pagerpal_core.models import Schedule, Team, User
from pagerpal_core.services import escalation_policies as escalation
from pagerpal_core.services.alert_sources import list_alert_sources
from pagerpal_core.services.schedules import list_schedules
from pagerpal_core.services.simulate import simulate_policy
from pagerpal_core.services.teams import list_teams
from pagerpal_core.services.users import list_active_users
from pagerpal_core.timeutil import as_utc, utcnow
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import form_action, form_status, team_choices
from pagerpal_web.ui.forms import LevelForm, PolicyForm, TargetForm, choice_list


def target_choices() -> list:
    """Every possible target as ("kind:id", label): active users, schedules, teams."""
    choices = [("", "— choose —")]
    choices += [(f"schedule:{s.id}", f"Schedule: {s.name} (whoever is on call)")
                for s in list_schedules(db.session)]
    choices += [(f"team:{t.id}", f"Team: {t.name} (on call in its schedules)")
                for t in list_teams(db.session)]
    choices += [(f"team_webhook:{t.id}", f"Team chat: {t.name} (its webhook)")
                for t in list_teams(db.session) if t.webhook_url]
    choices += [(f"user:{u.id}", f"Person: {u.name}")
                for u in list_active_users(db.session)]
    return choice_list(choices)


def parse_target(value: str) -> dict:
    """"schedule:3" → {"type": "schedule", "id": 3} (the service validates the rest)."""
    kind, _, raw_id = (value or "").partition(":")
    return {"type": kind, "id": int(raw_id) if raw_id.isdigit() else raw_id}


def describe_targets(level) -> list[str]:
    """Readable names of a level's targets."""
    names = []
    for target in level.targets:
        if target.target_type == "user":
            user = db.session.get(User, target.user_id)
            names.append(f"{user.name}" + ("" if user and user.active else " (inactive)") if user else "?")
        elif target.target_type == "schedule":
            schedule = db.session.get(Schedule, target.schedule_id)
            names.append(f"schedule {schedule.name if schedule else '?'}")
        else:
            team = db.session.get(Team, target.team_id)
            what = "team chat webhook" if target.target_type == "team_webhook" else "team"
            names.append(f"{what} {team.name if team else '?'}")
    return names


def _list_page(form: PolicyForm):
    form.team_id.choices = team_choices()
    policies = escalation.list_policies(db.session)
    return render_template("policies.html", policies=policies, form=form,
                           describe=describe_targets), form_status(form)


@bp.get("/escalation-policies")
@login_required_role("viewer")
def policies():
    """Every policy with its levels at a glance."""
    return _list_page(PolicyForm())


@bp.post("/escalation-policies")
@login_required_role("admin")
def create_policy_view():
    """Create a policy; levels are added on its page."""
    form = PolicyForm()
    form.team_id.choices = team_choices()
    return form_action(
        lambda: escalation.create_policy(db.session, name=form.name.data, description=form.description.data or "",
                                         team=form.team_id.data, repeat_count=form.repeat_count.data,
                                         ack_timeout_minutes=form.ack_timeout_minutes.data, now=utcnow()),
        form=form, page=_list_page, done=lambda policy: f"Created {policy.name}. Add level 1 next.",
        then=lambda policy: url_for("ui.policy_detail", policy_id=policy.id))


def simulation_view(policy) -> tuple[dict, int]:
    """Who the policy reaches now, and at the picker's `?at=` (a local time in the viewer's zone).

    Returns the template values and the status: 422 when `at` cannot be read (the page still
    renders, with the error next to the picker).
    """
    try:
        zone = ZoneInfo(getattr(current_user, "timezone", None) or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    values = {"now_simulation": simulate_policy(db.session, policy, utcnow()), "at_simulation": None,
              "at_value": "", "at_error": None, "zone_name": zone.key}
    raw = request.args.get("at", "").strip() if request.method == "GET" else ""
    if not raw:
        return values, 200
    values["at_value"] = raw[:40]
    try:
        moment = datetime.fromisoformat(raw)
        at = as_utc(moment if moment.tzinfo else moment.replace(tzinfo=zone))
        values["at_simulation"] = simulate_policy(db.session, policy, at)
    except (ValueError, OverflowError):
        values["at_error"] = "must be a date and time such as 2027-03-28T09:00"
    except Invalid as exc:
        values["at_error"] = exc.fields.get("at", exc.message)
    return values, 200 if values["at_error"] is None else 422


def _detail_page(policy, *, form=None, level_form=None, target_form=None, target_level_id=None):
    form = form or PolicyForm(prefix="policy", data={
        "name": policy.name, "description": policy.description, "team_id": policy.team_id,
        "repeat_count": policy.repeat_count, "ack_timeout_minutes": policy.ack_timeout_minutes})
    form.team_id.choices = team_choices()
    next_number = max((lvl.level_number for lvl in policy.levels), default=0) + 1
    level_form = level_form or LevelForm(prefix="level", data={"level_number": next_number, "delay_minutes": 15})
    choices = target_choices()
    level_form.target.choices = choices
    target_form = target_form or TargetForm(prefix="target")
    target_form.target.choices = choices
    sources = list_alert_sources(db.session, policy=policy)
    simulation, simulation_status = simulation_view(policy)
    status = max(form_status(form), form_status(level_form), form_status(target_form), simulation_status)
    return render_template("policy_detail.html", policy=policy, form=form, level_form=level_form,
                           target_form=target_form, target_level_id=target_level_id, sources=sources,
                           describe=describe_targets, **simulation,
                           team=db.session.get(Team, policy.team_id) if policy.team_id else None), status


@bp.get("/escalation-policies/<int:policy_id>")
@login_required_role("viewer")
def policy_detail(policy_id: int):
    """A policy's levels, delays and targets, with the forms that change them for admins."""
    return _detail_page(escalation.get_policy(db.session, policy_id))


@bp.post("/escalation-policies/<int:policy_id>")
@login_required_role("admin")
def update_policy_view(policy_id: int):
    """Rename, re-describe, re-team or change the repeat count."""
    policy = escalation.get_policy(db.session, policy_id)
    form = PolicyForm(prefix="policy")
    form.team_id.choices = team_choices()
    return form_action(
        lambda: escalation.update_policy(db.session, policy, name=form.name.data,
                                         description=form.description.data or "", team=form.team_id.data,
                                         repeat_count=form.repeat_count.data,
                                         ack_timeout_minutes=form.ack_timeout_minutes.data),
        form=form, page=lambda form: _detail_page(policy, form=form), done="Policy saved.",
        then=url_for("ui.policy_detail", policy_id=policy_id))


@bp.post("/escalation-policies/<int:policy_id>/levels")
@login_required_role("admin")
def add_level_view(policy_id: int):
    """Add a level; a number the policy already uses is shown as an error next to the field."""
    policy = escalation.get_policy(db.session, policy_id)
    form = LevelForm(prefix="level")
    form.target.choices = target_choices()
    return form_action(
        lambda: escalation.add_level(db.session, policy, level_number=form.level_number.data,
                                     delay_minutes=form.delay_minutes.data, targets=[parse_target(form.target.data)]),
        form=form, page=lambda form: _detail_page(policy, level_form=form),
        aliases={"targets": "target", "targets[0]": "target"},
        done=lambda level: f"Level {form.level_number.data} added.",
        then=url_for("ui.policy_detail", policy_id=policy_id))


@bp.post("/escalation-policies/<int:policy_id>/levels/<int:level_id>/targets")
@login_required_role("admin")
def add_target_view(policy_id: int, level_id: int):
    """Add another target to a level."""
    policy = escalation.get_policy(db.session, policy_id)
    level = escalation.get_level(db.session, policy, level_id)
    form = TargetForm(prefix="target")
    form.target.choices = target_choices()
    return form_action(
        lambda: escalation.add_target(db.session, level, parse_target(form.target.data)),
        form=form, page=lambda form: _detail_page(policy, target_form=form, target_level_id=level_id),
        done="Target added.", then=url_for("ui.policy_detail", policy_id=policy_id))


@bp.post("/escalation-policies/<int:policy_id>/levels/<int:level_id>/targets/<int:target_id>/remove")
@login_required_role("admin")
def remove_target_view(policy_id: int, level_id: int, target_id: int):
    """Remove a target from a level."""
    policy = escalation.get_policy(db.session, policy_id)
    escalation.remove_target(db.session, escalation.get_level(db.session, policy, level_id), target_id)
    db.session.commit()
    flash("Target removed.", "success")
    return redirect(url_for("ui.policy_detail", policy_id=policy_id), code=303)


@bp.post("/escalation-policies/<int:policy_id>/levels/<int:level_id>")
@login_required_role("admin")
def update_level_view(policy_id: int, level_id: int):
    """Change a level's delay (and number); a number already in use is refused."""
    policy = escalation.get_policy(db.session, policy_id)
    level = escalation.get_level(db.session, policy, level_id)
    number = request.form.get("level_number", type=int)
    delay = request.form.get("delay_minutes", type=int)
    return form_action(
        lambda: escalation.update_level(db.session, level,
                                        level_number=number if number is not None else level.level_number,
                                        delay_minutes=delay if delay is not None else ""),
        done=lambda updated: f"Level {level.level_number} saved.",
        then=url_for("ui.policy_detail", policy_id=policy_id))


@bp.post("/escalation-policies/<int:policy_id>/levels/<int:level_id>/delete")
@login_required_role("admin")
def delete_level_view(policy_id: int, level_id: int):
    """Delete a level and its targets."""
    policy = escalation.get_policy(db.session, policy_id)
    escalation.delete_level(db.session, escalation.get_level(db.session, policy, level_id))
    db.session.commit()
    flash("Level deleted.", "success")
    return redirect(url_for("ui.policy_detail", policy_id=policy_id), code=303)


@bp.post("/escalation-policies/<int:policy_id>/delete")
@login_required_role("admin")
def delete_policy_view(policy_id: int):
    """Delete a policy that no source or incident uses."""
    policy = escalation.get_policy(db.session, policy_id)
    return form_action(lambda: escalation.delete_policy(db.session, policy), done="Policy deleted.",
                       then=url_for("ui.policies"), failed=url_for("ui.policy_detail", policy_id=policy_id))
