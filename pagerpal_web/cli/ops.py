"""Operations commands: the readiness checklist and backups."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from pagerpal_core.errors import DomainError
from pagerpal_core.services.backup import back_up_database
from pagerpal_core.services.readiness import has_failures, run_readiness_checks
from pagerpal_core.timeutil import utcnow
from pagerpal_web.cli import fail, pagerpal
from pagerpal_web.config import settings as current_settings
from pagerpal_web.extensions import db

STATUS_STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}


@pagerpal.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as a JSON list.")
def check_command(as_json: bool):
    """Production readiness checklist: one line per check (ok/warn/fail); exit 1 on any fail."""
    settings = current_settings()
    # Alembic logs its context at INFO while reading the revision; keep the checklist clean.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        checks = run_readiness_checks(db.session, settings, now=utcnow())
    finally:
        db.session.rollback()
    if as_json:
        click.echo(json.dumps([check.as_dict() for check in checks], indent=2))
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            status = click.style(f"{check.status:<4}", fg=STATUS_STYLE[check.status], bold=True)
            click.echo(f"{status}  {check.name:<{width}}  {check.message}")
        failed = sum(check.status == "fail" for check in checks)
        warned = sum(check.status == "warn" for check in checks)
        click.echo(f"{failed} failed, {warned} warnings, {len(checks) - failed - warned} ok")
    if has_failures(checks):
        raise SystemExit(1)


# --- backups ---------------------------------------------------------------------------

@pagerpal.command("backup")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Backup file (default: <instance>/backups/pagerpal-<UTC time>.db|.dump).")
@click.option("--timeout", type=float, default=3600.0, show_default=True,
              help="Seconds pg_dump may run.")
def backup_command(output: Path | None, timeout: float):
    """Back up the database: SQLite via its online backup API, PostgreSQL via pg_dump -Fc.

    Safe while PagerPal runs. Restore steps are in the README ("Backups and restore").
    """
    try:
        target = back_up_database(current_settings(), now=utcnow(), target=output, timeout=timeout)
    except DomainError as exc:
        fail(exc.message)
    click.echo(f"Backup written to {target} ({target.stat().st_size} bytes).")

