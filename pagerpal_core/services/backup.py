"""Database backups: SQLite through its online backup API, PostgreSQL through `pg_dump -Fc`.

Both are safe while PagerPal runs. A backup is written beside its target as `.partial` and
renamed into place only once complete (and, for SQLite, once it passed an integrity check),
so a failed or interrupted backup never leaves a file that looks usable. Backups hold
password hashes and contact details, so every file is owner-only from its first byte.
Restore steps are in the README ("Backups and restore").
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from pagerpal_core.errors import Conflict, DomainError, Invalid
from pagerpal_core.settings import Settings


class BackupFailed(DomainError):
    """The backup tool or the copy failed; nothing was kept."""

    code, status = "backup_failed", 500


def default_backup_path(database_url: str, instance_path: str, now: datetime) -> Path:
    """`<instance>/backups/pagerpal-<UTC time>.db` (SQLite) or `.dump` (PostgreSQL)."""
    suffix = "db" if database_url.startswith("sqlite") else "dump"
    return Path(instance_path) / "backups" / f"pagerpal-{now.strftime('%Y%m%dT%H%M%SZ')}.{suffix}"


def sqlite_file(database_url: str) -> Path:
    """The file behind a sqlite:/// URL (in-memory databases cannot be backed up)."""
    path = make_url(database_url).database
    if not path or path == ":memory:":
        raise Invalid("an in-memory SQLite database cannot be backed up")
    return Path(path)


def backup_sqlite(database_url: str, target: Path) -> None:
    """Online, consistent copy through SQLite's backup API, checked before it is kept.

    The backup API copies pages under SQLite's own locking, so writers may keep going (WAL
    content is included); a plain file copy of a live database can be torn.
    """
    source_path = sqlite_file(database_url)
    if not source_path.exists():
        raise Invalid(f"no SQLite database at {source_path}")
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
        raise BackupFailed(f"the backup failed its integrity check: {ok}")
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
        raise BackupFailed("pg_dump is not installed (Debian/Ubuntu: postgresql-client)")
    conninfo, env = libpq_target(database_url)
    partial = target.with_name(target.name + ".partial")
    try:
        result = subprocess.run(
            [pg_dump, "--format=custom", "--no-owner", f"--file={partial}", f"--dbname={conninfo}"],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        partial.unlink(missing_ok=True)
        raise BackupFailed(f"pg_dump did not finish within {timeout:.0f} s") from None
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupFailed(f"pg_dump failed: {result.stderr.strip()[-500:]}")
    os.replace(partial, target)


def back_up_database(settings: Settings, *, now: datetime, target: Path | None = None,
                     timeout: float = 3600.0) -> Path:
    """Back up the configured database to `target` (default: see default_backup_path); returns the path.

    Refuses to overwrite an existing file (Conflict); `timeout` bounds pg_dump.
    """
    url = settings.database_url
    target = target or default_backup_path(url, settings.instance_path, now)
    if target.exists():
        raise Conflict(f"{target} already exists; choose another --output")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Owner-only from the first byte: the file holds password hashes and contact details.
    old_umask = os.umask(0o077)
    try:
        if settings.is_sqlite:
            backup_sqlite(url, target)
        else:
            backup_postgres(url, target, timeout)
    finally:
        os.umask(old_umask)
    return target
