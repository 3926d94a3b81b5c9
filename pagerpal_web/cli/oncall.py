"""`flask pagerpal who-is-on-call`: who each escalation policy would page now, or at a given time."""

from __future__ import annotations

import json

import click

from pagerpal_core.errors import DomainError
from pagerpal_core.services.escalation_policies import get_policy
from pagerpal_core.services.simulate import Simulation, simulate_policies, simulate_policy
from pagerpal_core.timeutil import isoformat, parse_iso, utcnow
from pagerpal_web.cli import fail, pagerpal
from pagerpal_web.extensions import db


def _as_dict(simulation: Simulation) -> dict:
    at = simulation.at
    return {"policy_id": simulation.policy.id, "policy": simulation.policy.name, "at": isoformat(at),
            "levels": [{"level_number": level.level_number, "delay_minutes": level.delay_minutes,
                        "reaches": [{"user_id": r.user.id, "name": r.user.name, "reason": r.reason,
                                     "until": isoformat(r.until), "explanation": r.explain(at)}
                                    for r in level.reaches]}
                       for level in simulation.levels]}


def _echo(simulation: Simulation) -> None:
    click.echo(f"{simulation.policy.name} (policy {simulation.policy.id}) at {isoformat(simulation.at)}")
    if not simulation.levels:
        click.echo("  no levels: nobody would be paged")
    for index, level in enumerate(simulation.levels):
        click.echo(f"  level {level.level_number} (escalates after {level.delay_minutes} min): "
                   f"{simulation.summary(index)}")


@pagerpal.command("who-is-on-call")
@click.option("--policy", "policy_id", type=int, default=None, help="Only this escalation policy (its id).")
@click.option("--at", "at_text", default=None, metavar="TIME",
              help="ISO-8601 instant, e.g. 2027-03-28T09:00:00+02:00 (naive means UTC); default now.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def who_is_on_call_command(policy_id: int | None, at_text: str | None, as_json: bool):
    """Who each escalation policy's levels would page at TIME (default now), and why.

    For each level: its delay and each person it reaches — named on the level, or on call by
    rotation turn, scheduled shift or override (with when it ends), directly or via a team.
    """
    try:
        at = parse_iso(at_text) if at_text is not None else utcnow()
    except (ValueError, OverflowError):
        fail(f"--at must be an ISO-8601 time such as 2027-03-28T09:00:00Z, got {at_text!r}")
    try:
        if policy_id is not None:
            simulations = [simulate_policy(db.session, get_policy(db.session, policy_id), at)]
        else:
            simulations = simulate_policies(db.session, at)
        if as_json:
            click.echo(json.dumps([_as_dict(s) for s in simulations], indent=2))
            return
        if not simulations:
            click.echo("No escalation policies yet.")
        for simulation in simulations:
            _echo(simulation)
    except DomainError as exc:
        fail(exc.message + "".join(f"; {name} {problem}" for name, problem in exc.fields.items()))
    finally:
        db.session.rollback()  # read-only
