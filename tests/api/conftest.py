"""Fixtures for API tests: accounts per role and their Basic-auth headers."""

from __future__ import annotations

import pytest

from tests.web.conftest import basic, make_account  # noqa: F401  (fixture re-exported)


@pytest.fixture
def accounts(make_account):  # noqa: F811  (the fixture, not the import)
    """One account per role plus Basic-auth headers: accounts["admin"] → headers."""
    return {role: basic(make_account(role=role).email) for role in ("viewer", "responder", "admin")}


@pytest.fixture
def admin(accounts):
    return accounts["admin"]
