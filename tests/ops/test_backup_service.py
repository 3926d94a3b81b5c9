"""The core backup service refuses what it cannot do, before writing anything."""

from __future__ import annotations

import sqlite3

import pytest

from pagerpal_core.errors import Conflict, Invalid
from pagerpal_core.services.backup import back_up_database
from pagerpal_core.settings import Settings
from pagerpal_core.timeutil import utcnow


def sqlite_settings(tmp_path, url: str) -> Settings:
    return Settings.from_env(environ={"PAGERPAL_INSTANCE_PATH": str(tmp_path), "DATABASE_URL": url})


def test_an_existing_target_is_never_overwritten(tmp_path):
    target = tmp_path / "taken.db"
    target.write_text("keep me")
    with pytest.raises(Conflict):
        back_up_database(sqlite_settings(tmp_path, f"sqlite:///{tmp_path}/app.db"), now=utcnow(), target=target)
    assert target.read_text() == "keep me"


def test_an_in_memory_database_cannot_be_backed_up(tmp_path):
    with pytest.raises(Invalid):
        back_up_database(sqlite_settings(tmp_path, "sqlite://"), now=utcnow(), target=tmp_path / "b.db")
    assert not list(tmp_path.glob("b.db*"))


def test_default_path_is_under_the_instance_folder(tmp_path):
    database = tmp_path / "app.db"
    sqlite3.connect(database).execute("CREATE TABLE t (x)").connection.commit()
    written = back_up_database(sqlite_settings(tmp_path, f"sqlite:///{database}"), now=utcnow())
    assert written.parent == tmp_path / "backups" and written.suffix == ".db"
    assert sqlite3.connect(written).execute("SELECT count(*) FROM t").fetchone() == (0,)
