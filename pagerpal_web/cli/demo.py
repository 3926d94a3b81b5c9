"""`flask pagerpal demo-data`: a populated PagerPal in one command (see core's services/demo.py)."""

from __future__ import annotations

import click

from pagerpal_core.errors import DomainError
from pagerpal_core.services.demo import create_demo_data
from pagerpal_core.timeutil import utcnow
from pagerpal_web.cli import fail, pagerpal
from pagerpal_web.config import settings
from pagerpal_web.extensions import db


@pagerpal.command("demo-data")
@click.option("--force", is_flag=True, help="Add demo data even though the database already has incidents.")
def demo_data_command(force: bool):
    """Create a demo team: 6 people, 2 teams, 3 schedules with rotations and an override, 2 policies,
    a source per format and incidents in every state. Refuses a database with incidents unless --force.

    Nobody real is paged: the people have fictional numbers and example.test addresses.
    """
    try:
        result = create_demo_data(db.session, now=utcnow(), base_url=settings().base_url, force=force)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        fail(exc.message)
    states = ", ".join(f"{count} {state}" for state, count in sorted(result.incidents.items()))
    click.echo(f"Demo data: {result.users} people, {result.teams} teams, {result.schedules} schedules, "
               f"{result.policies} escalation policies, {result.sources} alert sources; incidents: {states}.")
    click.echo("Sign in and open /dashboard. Demo alert source keys are not shown: regenerate one on its "
               "page to send alerts to it.")
