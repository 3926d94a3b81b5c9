"""Alert source commands: send-test-alert, and alert-sources create/list/regenerate-key/(de)activate."""

from __future__ import annotations

import click

from pagerpal_core.errors import DomainError
from pagerpal_core.models.alert_sources import SOURCE_KINDS
from pagerpal_core.services import alert_sources as sources
from pagerpal_core.services.ingestion import send_test_alert
from pagerpal_core.timeutil import isoformat, utcnow
from pagerpal_web.cli import fail, pagerpal
from pagerpal_web.config import settings
from pagerpal_web.extensions import db


def _failed(exc: DomainError) -> None:
    db.session.rollback()
    details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
    fail(exc.message + (f" ({details})" if details else ""))


@pagerpal.command("send-test-alert")
@click.option("--source", "source_name", required=True, help="The alert source's name.")
@click.option("--resolve", is_flag=True, help="Resolve the source's open test incident instead.")
def send_test_alert_command(source_name: str, resolve: bool):
    """Open a test incident for a source (paging its policy), or resolve it with --resolve."""
    try:
        source = sources.find_alert_source_by_name(db.session, source_name)
        result = send_test_alert(db.session, source, now=utcnow(),
                                 base_url=settings().base_url, resolve=resolve)
        db.session.commit()
    except DomainError as exc:
        _failed(exc)
    incident = f"incident {result.incident_id}" if result.incident_id else "no incident"
    click.echo(f"{result.outcome}: {result.message} ({incident}).")


@pagerpal.group("alert-sources")
def alert_sources_group():
    """Manage alert sources (each monitoring integration has its own key)."""


@alert_sources_group.command("create")
@click.option("--name", required=True, help="A unique name, e.g. grafana-prod.")
@click.option("--kind", type=click.Choice(SOURCE_KINDS), default="generic", show_default=True)
@click.option("--policy-id", type=int, default=None, help="Escalation policy new incidents go to.")
@click.option("--team-id", type=int, default=None, help="Team new incidents belong to.")
def create_command(name: str, kind: str, policy_id: int | None, team_id: int | None):
    """Create a source and print its key — the only time the full key is shown."""
    try:
        issued = sources.create_alert_source(db.session, name=name, kind=kind, policy_id=policy_id,
                                             team_id=team_id, now=utcnow())
        db.session.commit()
    except DomainError as exc:
        _failed(exc)
    click.echo(f"Created alert source {issued.source.name} (id {issued.source.id}, {kind}).")
    click.echo("Key (shown once; store it in your monitoring tool now):")
    click.echo(issued.key)


@alert_sources_group.command("list")
def list_command():
    """List sources with masked keys."""
    for source in sources.list_alert_sources(db.session):
        state = "active" if source.active else "inactive"
        last = isoformat(source.last_alert_at) or "never"
        click.echo(f"{source.id}\t{source.name}\t{source.kind}\t{state}\t"
                   f"{sources.mask_key(source.key_suffix)}\tlast alert {last}")


@alert_sources_group.command("regenerate-key")
@click.option("--name", required=True, help="The source's name.")
def regenerate_command(name: str):
    """Replace a source's key; the old key stops working at once. Prints the new key once."""
    try:
        source = sources.find_alert_source_by_name(db.session, name)
        issued = sources.regenerate_alert_source_key(db.session, source, now=utcnow())
        db.session.commit()
    except DomainError as exc:
        _failed(exc)
    click.echo(f"New key for {issued.source.name} (shown once; the old key no longer works):")
    click.echo(issued.key)


def _switch(name: str, change, done: str) -> None:
    try:
        source = sources.find_alert_source_by_name(db.session, name)
        change(db.session, source, now=utcnow())
        db.session.commit()
    except DomainError as exc:
        _failed(exc)
    click.echo(f"{done} {source.name}.")


@alert_sources_group.command("deactivate")
@click.option("--name", required=True, help="The source's name.")
def deactivate_command(name: str):
    """Refuse alerts from a source (its webhooks get 403)."""
    _switch(name, sources.deactivate_alert_source, "Deactivated")


@alert_sources_group.command("activate")
@click.option("--name", required=True, help="The source's name.")
def activate_command(name: str):
    """Accept alerts from a source again."""
    _switch(name, sources.activate_alert_source, "Activated")
