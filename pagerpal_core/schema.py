"""Where the database stands against the Alembic migrations (no Flask needed)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from pagerpal_core.db import make_engine
from pagerpal_core.settings import PROJECT_ROOT


def migrations_dir() -> Path:
    """The Alembic scripts: `migrations/` beside the packages, or PAGERPAL_MIGRATIONS_DIR."""
    return Path(os.environ.get("PAGERPAL_MIGRATIONS_DIR") or PROJECT_ROOT / "migrations")


def head_revisions() -> set[str]:
    """The revisions at the head of the migration scripts (one, unless the history forked)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return set(ScriptDirectory.from_config(config).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is stamped with (empty for a database never migrated)."""
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def schema_problem(engine: Engine | str, *, unreachable_ok: bool = False) -> str | None:
    """Why the database (an engine, or a URL) is not at the migration head, or None when it is.

    Code written for the newest schema must not run against an older one, so production
    refuses to start until `flask db upgrade`. An unreachable database is a problem too,
    unless `unreachable_ok`: the worker's loop backs off and reconnects, and exiting would
    only make systemd restart it in a loop.
    """
    owned = isinstance(engine, str)
    if owned:
        engine = make_engine(engine)
    try:
        current = current_revisions(engine)
    except Exception as exc:  # unreachable database: say so rather than crash
        return None if unreachable_ok else f"database unreachable: {type(exc).__name__}"
    finally:
        if owned:
            engine.dispose()
    return revision_problem(current)


def revision_problem(current: set[str]) -> str | None:
    """Why a database stamped `current` is not at the migration head, or None when it is."""
    heads = head_revisions()
    if current != heads:
        return (f"database is not at the migration head (at {sorted(current) or 'nothing'}, "
                f"head {sorted(heads)}): run `flask db upgrade`")
    return None


def production_refusal(settings, *, web: bool, engine: Engine | str | None = None) -> list[str]:
    """Why a production process must not start (empty outside production, or when all is well).

    The one start-up check of both processes. The web (`web=True`) also refuses the
    configuration's production problems and an unreachable database; the worker only a
    reachable database whose schema is not at the head (its loop waits out an outage).
    """
    if not settings.is_production:
        return []
    problems = settings.production_problems() if web else []
    problem = schema_problem(engine if engine is not None else settings.database_url, unreachable_ok=not web)
    if problem:
        problems.append(problem)
    return problems

