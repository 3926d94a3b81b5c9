"""The one schema-at-head check the web and the worker share."""

from __future__ import annotations

from pagerpal_core.schema import schema_problem


def test_unmigrated_database_is_behind_the_head(tmp_path):
    assert "migration head" in schema_problem(f"sqlite:///{tmp_path}/empty.db")


def test_an_unreachable_database_is_a_problem_unless_the_caller_retries(tmp_path):
    # A directory that does not exist: SQLite cannot open the file.
    url = f"sqlite:///{tmp_path}/missing/dir/pagerpal.db"
    assert schema_problem(url).startswith("database unreachable")
    assert schema_problem(url, unreachable_ok=True) is None
