"""Helpers for audit-log tests: read the audit table through its own connection."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from pagerpal_core.models import AuditEvent
from pagerpal_web.extensions import db
from tests.web.conftest import basic, login, make_account  # noqa: F401  (fixture re-exported)


def audit_rows(app, after_id: int = 0) -> list[dict]:
    """Committed audit rows with an id above `after_id`, oldest first, as plain dicts."""
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.id > after_id).order_by(AuditEvent.id))
        result = [{c.name: getattr(row, c.name) for c in AuditEvent.__table__.columns} for row in rows]
        db.session.remove()
        return result


def last_audit_id(app) -> int:
    rows = audit_rows(app)
    return rows[-1]["id"] if rows else 0


def row_text(row: dict) -> str:
    """Everything a row holds, as one string (for "this secret appears nowhere")."""
    return json.dumps(row, default=str)


@pytest.fixture
def admin_account(make_account):  # noqa: F811  (the fixture, not the import)
    return make_account(role="admin", email="audit-admin@example.test", name="Audit Admin")
