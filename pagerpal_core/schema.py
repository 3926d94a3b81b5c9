"""Where the database stands against the Alembic migrations (no Flask needed)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from pagerpal_core.settings import PROJECT_ROOT


def migrations_dir() -> Path:
    """The Alembic scripts: `migrations/` beside the packages, or PAGERPAL_MIGRATIONS_DIR."""
    return Path(os.environ.get("PAGERPAL_MIGRATIONS_DIR") or PROJECT_ROOT / "migrations")


def head_revisions() -> set[str]:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return set(ScriptDirectory.from_config(config).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def schema_problem(engine: Engine) -> str | None:
    """Why the database is not at the migration head, or None when it is."""
    try:
        current = current_revisions(engine)
    except Exception as exc:  # unreachable database: say so rather than crash
        return f"database unreachable: {type(exc).__name__}"
    heads = head_revisions()
    if current != heads:
        return (f"database is not at the migration head (at {sorted(current) or 'nothing'}, "
                f"head {sorted(heads)}): run `flask db upgrade`")
    return None
