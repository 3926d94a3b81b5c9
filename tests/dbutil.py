"""Fresh databases for tests: a migrated template per backend, cloned or reset for each test.

SQLite: the template file is copied per test (a file copy is cheap). PostgreSQL:
`CREATE DATABASE ... TEMPLATE` costs a few hundred milliseconds, so each test process
keeps a pool of migrated databases and empties one (DELETE, sequences restarted)
when a test is done with it; a database a test changed beyond its rows (schema,
migration version) is dropped instead of reused.
"""

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


_admin_engine: sa.Engine | None = None


def _admin() -> sa.Engine:
    """One autocommit engine on the admin database per test process (pre-pinged: the
    server may have been restarted by a test)."""
    global _admin_engine
    if _admin_engine is None:
        _admin_engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True,
                                         pool_size=1, max_overflow=2)
    return _admin_engine


def _admin_exec(sql: str, **params) -> None:
    with _admin().connect() as conn:
        conn.execute(sa.text(sql), params)


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


def _public_tables(conn) -> list[str]:
    return list(conn.scalars(sa.text(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")))


def _schema_fingerprint(conn) -> tuple:
    """Tables and migration version: what a reset must find unchanged to reuse a database."""
    tables = _public_tables(conn)
    version = tuple(conn.scalars(sa.text("SELECT version_num FROM alembic_version"))) \
        if "alembic_version" in tables else ()
    return tuple(tables), version


def reset_pg_database(name: str, expected: tuple, engine: sa.Engine | None = None) -> bool:
    """Empty every table of `name` and restart its sequences; False when it cannot be
    reused (schema or migration version changed, or the reset failed).

    `engine` (one connection to `name`, kept by the pool) saves a new server process per
    reset: most of a reset's cost was starting one and loading its catalog caches."""
    own = engine is None
    if own:
        engine = sa.create_engine(pg_url(name), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            # Connections a test left behind (leaked pools, killed subprocesses) would block the reset.
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            conn.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            if _schema_fingerprint(conn) != expected:
                return False
            tables = [t for t in expected[0] if t != "alembic_version"]
            # DELETE is much cheaper than TRUNCATE for tables this small (TRUNCATE makes new
            # files for every table); replica mode skips foreign-key and audit triggers.
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            conn.execute(sa.text("; ".join(f'DELETE FROM "{t}"' for t in tables)))
            conn.execute(sa.text("SELECT setval(c.oid, 1, false) FROM pg_class c "
                                 "WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace"))
        return True
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        if own:
            engine.dispose()


class PgPool:
    """Migrated PostgreSQL databases for one test process, reused after a reset."""

    def __init__(self, template: str):
        self.template = template
        self.free: list[str] = []
        self.owned: set[str] = set()
        self.resetters: dict[str, sa.Engine] = {}
        engine = sa.create_engine(pg_url(template), poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            self.expected = _schema_fingerprint(conn)
        engine.dispose()

    def acquire(self) -> str:
        """A migrated, empty database name."""
        if self.free:
            return self.free.pop()
        name = create_pg_database(template=self.template)
        self.owned.add(name)
        return name

    def release(self, name: str) -> None:
        """Give `name` back: reset for the next test, or dropped when it cannot be."""
        if name not in self.resetters:  # pre-pinged: a test may have ended its connection
            self.resetters[name] = sa.create_engine(pg_url(name), pool_size=1, max_overflow=0,
                                                    pool_pre_ping=True)
        if reset_pg_database(name, self.expected, self.resetters[name]):
            self.free.append(name)
        else:
            self.resetters.pop(name).dispose()
            self.owned.discard(name)
            drop_pg_database(name)

    def close(self) -> None:
        for engine in self.resetters.values():
            engine.dispose()
        self.resetters.clear()
        for name in self.owned:
            drop_pg_database(name)
        self.owned.clear()
        self.free.clear()
