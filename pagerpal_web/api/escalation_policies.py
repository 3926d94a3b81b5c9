"""/api/v1/escalation-policies with levels and their targets."""

from functools import partial

from flask import jsonify

from pagerpal_core.models import EscalationLevel, EscalationPolicy, EscalationTarget
from pagerpal_core.services import escalation_policies as svc
from pagerpal_core.services.simulate import Simulation, simulate_policy
from pagerpal_core.services.validation import raise_if
from pagerpal_core.timeutil import utcnow
from pagerpal_web.api import bp
from pagerpal_web.api.common import body_fields, check_types, created, no_content, paginate, query_instant, ts
from pagerpal_web.api.users import user_ref
from pagerpal_web.extensions import db

POLICY_FIELDS = {"name", "description", "team_id", "repeat_count", "ack_timeout_minutes", "levels"}
LEVEL_FIELDS = {"level_number", "delay_minutes", "targets"}


def serialize_target(target: EscalationTarget) -> dict:
    """A level's target as JSON: its type and the id of the user, schedule or team."""
    target_id = {"user": target.user_id, "schedule": target.schedule_id,
                 "team": target.team_id, "team_webhook": target.team_id}[target.target_type]
    return {"id": target.id, "type": target.target_type, "target_id": target_id}


def serialize_level(level: EscalationLevel) -> dict:
    """An escalation level as JSON with its targets."""
    return {"id": level.id, "policy_id": level.policy_id, "level_number": level.level_number,
            "delay_minutes": level.delay_minutes, "targets": [serialize_target(t) for t in level.targets]}


def serialize_policy(policy: EscalationPolicy) -> dict:
    """An escalation policy as JSON with its levels and their targets."""
    return {"id": policy.id, "name": policy.name, "description": policy.description,
            "team_id": policy.team_id, "repeat_count": policy.repeat_count,
            "ack_timeout_minutes": policy.ack_timeout_minutes,
            "levels": [serialize_level(level) for level in policy.levels],
            "created_at": ts(policy.created_at)}


def _policy_args(data: dict) -> dict:
    args = {k: v for k, v in data.items() if k != "team_id"}
    if "team_id" in data:
        args["team"] = data["team_id"]
    return args


@bp.get("/escalation-policies")
def list_escalation_policies():
    """Policies by id with levels and targets, paginated."""
    return jsonify(paginate(partial(svc.list_policies, db.session), "api.list_escalation_policies",
                            serialize_policy))


@bp.post("/escalation-policies")
def create_escalation_policy():
    """Create a policy, optionally with its levels in one call."""
    data = body_fields(POLICY_FIELDS, needed=("name",))
    check_types(data, levels="array")
    policy = svc.create_policy(db.session, **_policy_args(data), now=utcnow())
    db.session.commit()
    return created(serialize_policy(policy), "api.read_escalation_policy", policy_id=policy.id)


@bp.get("/escalation-policies/<int:policy_id>")
def read_escalation_policy(policy_id: int):
    """One policy with levels and targets."""
    return jsonify(serialize_policy(svc.get_policy(db.session, policy_id)))


@bp.patch("/escalation-policies/<int:policy_id>")
def update_escalation_policy(policy_id: int):
    """Change name, description, team (null detaches), repeat count or ack timeout (null switches it off)."""
    data = body_fields(POLICY_FIELDS - {"levels"})
    policy = svc.update_policy(db.session, svc.get_policy(db.session, policy_id), **_policy_args(data))
    db.session.commit()
    return jsonify(serialize_policy(policy))


@bp.delete("/escalation-policies/<int:policy_id>")
def delete_escalation_policy(policy_id: int):
    """Delete a policy no alert source or incident uses (409 otherwise)."""
    svc.delete_policy(db.session, svc.get_policy(db.session, policy_id))
    db.session.commit()
    return no_content()


# --- levels --------------------------------------------------------------------------

def _level(policy_id: int, level_id: int) -> EscalationLevel:
    return svc.get_level(db.session, svc.get_policy(db.session, policy_id), level_id)


@bp.get("/escalation-policies/<int:policy_id>/levels")
def list_levels(policy_id: int):
    """The policy's levels in order."""
    return jsonify(items=[serialize_level(level) for level in svc.get_policy(db.session, policy_id).levels])


@bp.post("/escalation-policies/<int:policy_id>/levels")
def create_level(policy_id: int):
    """Add a level (default number: after the last); a number already used is a 409."""
    policy = svc.get_policy(db.session, policy_id)
    data = body_fields(LEVEL_FIELDS)
    check_types(data, targets="array")
    level = svc.add_level(db.session, policy, **data)
    db.session.commit()
    return created(serialize_level(level), "api.read_level", policy_id=policy.id, level_id=level.id)


@bp.get("/escalation-policies/<int:policy_id>/levels/<int:level_id>")
def read_level(policy_id: int, level_id: int):
    """One level with its targets."""
    return jsonify(serialize_level(_level(policy_id, level_id)))


@bp.patch("/escalation-policies/<int:policy_id>/levels/<int:level_id>")
def update_level(policy_id: int, level_id: int):
    """Renumber a level or change its delay."""
    data = body_fields(LEVEL_FIELDS - {"targets"})
    level = svc.update_level(db.session, _level(policy_id, level_id), **data)
    db.session.commit()
    return jsonify(serialize_level(level))


@bp.delete("/escalation-policies/<int:policy_id>/levels/<int:level_id>")
def delete_level(policy_id: int, level_id: int):
    """Delete a level and its targets."""
    svc.delete_level(db.session, _level(policy_id, level_id))
    db.session.commit()
    return no_content()


@bp.post("/escalation-policies/<int:policy_id>/levels/<int:level_id>/targets")
def create_target(policy_id: int, level_id: int):
    """Add a target {"type": "user"|"schedule"|"team", "id": n}; a repeated one is a 409."""
    level = _level(policy_id, level_id)
    data = body_fields({"type", "id"}, needed=("type", "id"))
    svc.add_target(db.session, level, data)
    db.session.commit()
    return created(serialize_level(level), "api.read_level", policy_id=policy_id, level_id=level.id)


@bp.delete("/escalation-policies/<int:policy_id>/levels/<int:level_id>/targets/<int:target_id>")
def delete_target(policy_id: int, level_id: int, target_id: int):
    """Remove one target from a level."""
    svc.remove_target(db.session, _level(policy_id, level_id), target_id)
    db.session.commit()
    return no_content()


# --- simulation: who would be paged at T ------------------------------------------------

def serialize_simulation(simulation: Simulation) -> dict:
    """A policy simulation as JSON: per level, who is reached at `at` and why."""
    at = simulation.at
    return {"policy_id": simulation.policy.id, "at": ts(at), "levels": [
        {"level_number": level.level_number, "delay_minutes": level.delay_minutes, "reaches": [
            {"user": user_ref(r.user), "reason": r.reason, "via": r.via,
             "schedule_id": r.schedule.id if r.schedule else None, "team_id": r.team.id if r.team else None,
             "until": ts(r.until), "until_local": r.until_local(at), "explanation": r.explain(at)}
            for r in level.reaches]}
        for level in simulation.levels]}


@bp.get("/escalation-policies/<int:policy_id>/simulate")
def simulate_escalation_policy(policy_id: int):
    """Who each level would page at `?at=` (ISO-8601; now when absent), and why each person."""
    policy = svc.get_policy(db.session, policy_id)
    errors: dict = {}
    at = query_instant("at", errors)
    raise_if(errors, "invalid instant")
    return jsonify(serialize_simulation(simulate_policy(db.session, policy, at or utcnow())))
