"""Audit commands: audit-export (JSON lines on stdout). Every command also names the CLI as the actor.

`flask pagerpal ...` runs with no request, so core services would record "system" as the
actor of what a command changes; the group callback below sets the CLI's audit context
(kind "cli", via "cli", the operating-system user) for the length of each command.
"""

from __future__ import annotations

import json

import click

from pagerpal_core.errors import DomainError
from pagerpal_core.services import audit as svc
from pagerpal_core.timeutil import parse_iso
from pagerpal_web.cli import fail, pagerpal
from pagerpal_web.extensions import db


def _cli_audit_context() -> None:
    """Group callback: commands run under the CLI's audit context, dropped when the command ends."""
    token = svc.set_audit_context(svc.cli_context())
    click.get_current_context().call_on_close(lambda: svc.reset_audit_context(token))


if pagerpal.callback is None:  # the group has no callback of its own; it runs before every subcommand
    pagerpal.callback = _cli_audit_context


def _instant(value: str | None, name: str):
    if value is None:
        return None
    try:
        return parse_iso(value)
    except (ValueError, TypeError, OverflowError):
        fail(f"--{name} must be an ISO-8601 timestamp such as 2026-01-31T00:00:00Z")


@pagerpal.command("audit-export")
@click.option("--since", default=None, help="Only rows at or after this ISO-8601 instant.")
@click.option("--until", default=None, help="Only rows before this ISO-8601 instant.")
def audit_export_command(since: str | None, until: str | None):
    """Write the audit log as JSON lines (one row per line, oldest first) to standard output.

    Secrets were masked when the rows were written; the export shows them as stored.
    """
    try:
        filters = svc.AuditFilter(since=_instant(since, "since"), until=_instant(until, "until")).check()
    except DomainError as exc:
        fail(exc.message + "; " + "; ".join(f"--{k}: {v}" for k, v in exc.fields.items()))
    for event in svc.iter_audit_events(db.session, filters=filters):
        click.echo(json.dumps(svc.audit_event_as_dict(event), ensure_ascii=False, sort_keys=True))
