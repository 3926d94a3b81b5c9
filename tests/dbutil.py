"""Fresh databases for tests: a migrated template per backend, cloned for each test."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from pagerpal_core.db import make_engine
from pagerpal_core.schema import migrations_dir

PG_ADMIN_URL = os.environ.get("PAGERPAL_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def pg_url(dbname: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + dbname


def postgres_unavailable_reason() -> str | None:
    """None when the test PostgreSQL answers, else why not."""
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means "not here"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"


def _admin_exec(sql: str) -> None:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(sql))
    engine.dispose()


def upgrade(url: str) -> None:
    """Run every migration on `url` (Alembic directly, no Flask app needed)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    engine = make_engine(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    engine.dispose()


def create_pg_database(template: str | None = None, prefix: str = "pagerpal_t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _admin_exec(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


def drop_pg_database(name: str) -> None:
    _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_sqlite_template(directory: Path) -> Path:
    path = directory / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def clone_sqlite(template: Path, directory: Path) -> str:
    target = directory / f"pagerpal-{uuid.uuid4().hex[:8]}.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"
