"""`flask pagerpal backup` writes a file that restores into a working database, on both backends."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from pagerpal_core.db import make_engine
from pagerpal_core.schema import head_revisions
from tests import dbutil
from tests.factories import make_user


def restored_state(url: str) -> tuple[set[str], list[str]]:
    """(alembic revisions, user emails) of the database at `url`."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            revisions = {row[0] for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))}
            emails = [row[0] for row in conn.execute(sa.text("SELECT email FROM users ORDER BY id"))]
    finally:
        engine.dispose()
    return revisions, emails


def test_backup_restores(backend, app, runner, session, tmp_path):
    user = make_user(session, role="admin", email="backup-check@example.test")
    session.commit()
    target = tmp_path / "out" / ("backup.db" if backend == "sqlite" else "backup.dump")

    result = runner.invoke(args=["pagerpal", "backup", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert f"Backup written to {target}" in result.output
    assert stat.S_IMODE(target.stat().st_mode) & 0o077 == 0  # owner-only: it holds password hashes
    assert not list(target.parent.glob("*.partial"))

    if backend == "sqlite":
        restored = tmp_path / "restored.db"
        shutil.copyfile(target, restored)
        url = f"sqlite:///{restored}"
        assert restored_state(url) == (head_revisions(), [user.email])
        return

    name = dbutil.create_pg_database(prefix="pagerpal_restore")
    try:
        url = dbutil.pg_url(name)
        restore = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error",
                                  f"--dbname={url.replace('+psycopg2', '')}", str(target)],
                                 capture_output=True, text=True, timeout=120)
        assert restore.returncode == 0, restore.stderr
        assert restored_state(url) == (head_revisions(), [user.email])
    finally:
        dbutil.drop_pg_database(name)


def test_backup_refuses_to_overwrite(app, runner, tmp_path):
    target = tmp_path / "existing.bak"
    target.write_text("keep me")
    result = runner.invoke(args=["pagerpal", "backup", "--output", str(target)])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert target.read_text() == "keep me"


def test_default_backup_path_is_in_the_instance_folder(app, runner):
    result = runner.invoke(args=["pagerpal", "backup"])
    assert result.exit_code == 0, result.output
    backups = list((Path(app.instance_path) / "backups").iterdir())
    assert len(backups) == 1 and backups[0].name.startswith("pagerpal-")


@pytest.mark.postgres_only
def test_pg_dump_failure_is_reported_without_the_password(make_app, tmp_path, pg_database_url):
    bad = pg_database_url.replace("postgres@", "postgres:placeholder-password@").rsplit("/", 1)[0] \
        + "/pagerpal_no_such_database"
    app = make_app(DATABASE_URL=bad)
    result = app.test_cli_runner().invoke(args=["pagerpal", "backup", "--output", str(tmp_path / "x.dump")])
    assert result.exit_code == 1
    assert "pg_dump failed" in result.output
    assert "placeholder-password" not in result.output
    assert not (tmp_path / "x.dump").exists()


@pytest.mark.backends("sqlite")
def test_sqlite_backup_is_online_and_consistent(app, runner, session, engine, tmp_path):
    """A writer mid-transaction neither blocks the backup nor leaks its uncommitted row into it."""
    committed = make_user(session, email="committed@example.test")
    session.commit()
    with engine.connect() as writer:
        transaction = writer.begin()  # BEGIN IMMEDIATE: holds SQLite's write lock
        writer.execute(sa.text("UPDATE users SET name = 'uncommitted' WHERE id = :id"), {"id": committed.id})
        target = tmp_path / "online.db"
        result = runner.invoke(args=["pagerpal", "backup", "--output", str(target)])
        transaction.rollback()
    assert result.exit_code == 0, result.output
    check = make_engine(f"sqlite:///{target}")
    try:
        with check.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM users")).scalars().all() == [committed.name]
    finally:
        check.dispose()
