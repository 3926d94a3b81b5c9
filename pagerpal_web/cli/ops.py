"""Operations commands: the readiness checklist and backups."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path

import click
from flask import current_app
from sqlalchemy.engine import make_url

from pagerpal_core.services.readiness import has_failures, run_readiness_checks
from pagerpal_core.timeutil import utcnow
from pagerpal_web.cli import fail, pagerpal
from pagerpal_web.extensions import db

STATUS_STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}


@pagerpal.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as a JSON list.")
def check_command(as_json: bool):
    """Production readiness checklist: one line per check (ok/warn/fail); exit 1 on any fail."""
    settings = current_app.config["PAGERPAL"]
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

def _default_backup_path(database_url: str, instance_path: str, now: datetime) -> Path:
    suffix = "db" if database_url.startswith("sqlite") else "dump"
    return Path(instance_path) / "backups" / f"pagerpal-{now.strftime('%Y%m%dT%H%M%SZ')}.{suffix}"


def sqlite_file(database_url: str) -> Path:
    """The file behind a sqlite:/// URL (in-memory databases cannot be backed up)."""
    path = make_url(database_url).database
    if not path or path == ":memory:":
        raise click.ClickException("an in-memory SQLite database cannot be backed up")
    return Path(path)


def backup_sqlite(database_url: str, target: Path) -> None:
    """Online, consistent copy through SQLite's backup API, checked before it is kept.

    The backup API copies pages under SQLite's own locking, so writers may keep going (WAL
    content is included); a plain file copy of a live database can be torn.
    """
    source_path = sqlite_file(database_url)
    if not source_path.exists():
        raise click.ClickException(f"no SQLite database at {source_path}")
    source = sqlite3.connect(str(source_path), timeout=30)
    partial = target.with_name(target.name + ".partial")
    try:
        destination = sqlite3.connect(partial)
        try:
            source.backup(destination, pages=1024)
            ok = destination.execute("PRAGMA integrity_check").fetchone()[0]
            # A standalone file: no -wal beside it is needed to read it.
            destination.execute("PRAGMA journal_mode=DELETE")
        finally:
            destination.close()
    finally:
        source.close()
    if ok != "ok":
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"the backup failed its integrity check: {ok}")
    os.replace(partial, target)


def libpq_target(database_url: str) -> tuple[str, dict]:
    """A libpq connection URL without the password, and the environment that carries it.

    The password goes in PGPASSWORD so it never shows in the process list.
    """
    url = make_url(database_url)
    env = {}
    if url.password:
        env["PGPASSWORD"] = url.password
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def backup_postgres(database_url: str, target: Path, timeout: float) -> None:
    """`pg_dump --format=custom` (restore with pg_restore), written atomically."""
    pg_dump = shutil.which("pg_dump")
    if not pg_dump:
        raise click.ClickException("pg_dump is not installed (Debian/Ubuntu: postgresql-client)")
    conninfo, env = libpq_target(database_url)
    partial = target.with_name(target.name + ".partial")
    try:
        result = subprocess.run(
            [pg_dump, "--format=custom", "--no-owner", f"--file={partial}", f"--dbname={conninfo}"],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"pg_dump did not finish within {timeout:.0f} s") from None
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"pg_dump failed: {result.stderr.strip()[-500:]}")
    os.replace(partial, target)


@pagerpal.command("backup")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Backup file (default: <instance>/backups/pagerpal-<UTC time>.db|.dump).")
@click.option("--timeout", type=float, default=3600.0, show_default=True,
              help="Seconds pg_dump may run.")
def backup_command(output: Path | None, timeout: float):
    """Back up the database: SQLite via its online backup API, PostgreSQL via pg_dump -Fc.

    Safe while PagerPal runs. Restore steps are in the README ("Backups and restore").
    """
    settings = current_app.config["PAGERPAL"]
    url = settings.database_url
    target = output or _default_backup_path(url, settings.instance_path, utcnow())
    if target.exists():
        fail(f"{target} already exists; choose another --output")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Backups hold password hashes and contact details: owner-only from the first byte.
    old_umask = os.umask(0o077)
    try:
        if settings.is_sqlite:
            backup_sqlite(url, target)
        else:
            backup_postgres(url, target, timeout)
    finally:
        os.umask(old_umask)
    click.echo(f"Backup written to {target} ({target.stat().st_size} bytes).")

