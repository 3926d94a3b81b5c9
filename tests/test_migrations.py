"""Migrations: one head, and models and migrations do not drift, on both backends."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import pagerpal_core.models  # noqa: F401
from pagerpal_core.db import Base
from pagerpal_core.schema import migrations_dir, schema_problem


def test_single_head():
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_models_match_migrations(engine):
    """Autogenerate against a freshly migrated database finds nothing to do."""
    with engine.connect() as conn, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # expression indexes cannot be compared; checked below
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_email_uniqueness_ignores_case_in_the_schema(engine):
    """The lower(email) index (which autogenerate cannot compare) is really there."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    insert = text("INSERT INTO users (email, name, role, active, timezone, auth_version, created_at,"
                  " updated_at) VALUES (:e, 'x', 'viewer', true, 'UTC', 1, :t, :t)")
    with engine.connect() as conn:
        conn.execute(insert, {"e": "Ada@Example.test", "t": "2026-01-01 00:00:00"})
        with pytest.raises(IntegrityError):
            conn.execute(insert, {"e": "ada@example.TEST", "t": "2026-01-01 00:00:00"})
        conn.rollback()


def test_fresh_database_is_at_head(engine):
    assert schema_problem(engine) is None
