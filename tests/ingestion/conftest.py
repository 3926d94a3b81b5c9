"""Fixtures for ingestion tests: sources with keys, posting helpers, row counts."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from pagerpal_core.models import AlertSource, Incident, IncidentEvent, Notification, SnsSubscription
from pagerpal_core.services.alert_sources import create_alert_source
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db


@pytest.fixture
def make_source(app):
    """Create a committed source in the app's database: make_source(kind="grafana")."""
    def make(name=None, **kwargs):
        with app.app_context():
            issued = create_alert_source(db.session, name=name or f"src-{utcnow().timestamp()}",
                                         now=utcnow(), **kwargs)
            db.session.commit()
            return SimpleNamespace(id=issued.source.id, name=issued.source.name, key=issued.key)
    return make


@pytest.fixture
def source(make_source):
    # key-only: the SNS samples here are unsigned (signatures are tested in tests/security).
    return make_source(name="monitoring", sns_verification="key-only")


def auth_headers(key: str, how: str = "header") -> dict:
    if how == "header":
        return {"X-API-Key": key}
    if how == "bearer":
        return {"Authorization": f"Bearer {key}"}
    if how == "basic":
        return {"Authorization": "Basic " + base64.b64encode(f"sns:{key}".encode()).decode()}
    return {}


def post(client, path: str, body, key: str | None = None, how: str = "header", content_type="application/json",
         raw: bytes | None = None):
    """POST `body` as JSON (or `raw` bytes) with the key sent the way `how` says."""
    headers = auth_headers(key, how) if key else {}
    if key and how == "query":
        path += ("&" if "?" in path else "?") + "api_key=" + key
    data = raw if raw is not None else json.dumps(body)
    return client.post(path, data=data, headers=headers, content_type=content_type)


@pytest.fixture
def row_counts(app):
    """Row counts of every table ingestion may write (for "nothing written" checks)."""
    def counts() -> dict:
        with app.app_context():
            out = {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
                   for model in (Incident, IncidentEvent, SnsSubscription, Notification)}
            db.session.remove()
            return out
    return counts


@pytest.fixture
def incidents(app):
    """All incidents (detached), oldest first."""
    def fetch(source_id=None) -> list[Incident]:
        with app.app_context():
            query = select(Incident).order_by(Incident.id)
            if source_id is not None:
                query = query.where(Incident.alert_source_id == source_id)
            rows = list(db.session.scalars(query))
            db.session.expunge_all()
            db.session.remove()
            return rows
    return fetch


@pytest.fixture
def timeline(app):
    """(kind, message, detail) of an incident's timeline."""
    def fetch(incident_id) -> list[tuple]:
        with app.app_context():
            rows = [(e.kind, e.message, e.detail) for e in db.session.scalars(
                select(IncidentEvent).where(IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.id))]
            db.session.remove()
            return rows
    return fetch


@pytest.fixture
def get_source(app):
    def fetch(source_id) -> AlertSource:
        with app.app_context():
            row = db.session.get(AlertSource, source_id)
            db.session.expunge(row)
            db.session.remove()
            return row
    return fetch
