"""Fixtures for the security tests (the shared ones come from tests/conftest.py)."""

from __future__ import annotations

from tests.web.conftest import basic, login, make_account  # noqa: F401  (re-exported fixture and helpers)
