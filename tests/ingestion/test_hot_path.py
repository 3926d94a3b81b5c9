"""The lean ingestion path, on SQLite and PostgreSQL: the per-process source cache never admits
a revoked key, a repeat is one statement, batches are set-based, and dedup stays race-free."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

from pagerpal_core.db import make_session_factory
from pagerpal_core.errors import RateLimited
from pagerpal_core.models import Incident, IncidentEvent
from pagerpal_core.payloads.common import TRIGGER, AlertEvent
from pagerpal_core.services.alert_sources import (
    create_alert_source,
    deactivate_alert_source,
    get_alert_source,
    regenerate_alert_source_key,
    update_alert_source,
)
from pagerpal_core.services.escalation_policies import create_policy
from pagerpal_core.services.ingestion import ingest_events
from pagerpal_core.services.rate_limit import SourceChanged, TokenBucket
from pagerpal_core.services.source_cache import SOURCE_CACHE, load_source_snapshot
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from tests.ingestion import samples
from tests.ingestion.conftest import post

ALERT = {"title": "Database down", "external_id": "db-down", "severity": "critical"}


@contextmanager
def statements(app):
    """Collect the SQL statements the app's engine runs inside the block."""
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, *args):
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def change_in_another_process(app, change):
    """Run `change(session, source)` on a session of its own, as another web process or the UI would."""
    def run(source_id):
        with app.app_context():
            factory = make_session_factory(db.engine)
        with factory() as session:
            result = change(session, get_alert_source(session, source_id))
            session.commit()
            return result
    return run


def test_regenerated_key_is_refused_on_the_very_next_request_with_the_cache_warm(app, client, source):
    assert post(client, "/api/v1/alerts", ALERT, source.key).status_code == 201
    assert post(client, "/api/v1/alerts", ALERT, source.key).status_code == 200
    old_hash = load_source_snapshot_for(app, source.id).key_hash
    assert SOURCE_CACHE._entries.get(old_hash) is not None  # the cache is warm for the old key

    issued = change_in_another_process(app, lambda s, src: regenerate_alert_source_key(s, src, now=utcnow()))(
        source.id)

    refused = post(client, "/api/v1/alerts", ALERT, source.key)
    assert refused.status_code == 401, refused.get_json()
    assert refused.get_json()["error"]["code"] == "unauthorized"
    assert old_hash not in SOURCE_CACHE._entries  # the stale copy is gone
    accepted = post(client, "/api/v1/alerts", ALERT, issued.key)
    assert accepted.status_code == 200 and accepted.get_json()["occurrence_count"] == 3


def test_regenerated_key_is_refused_on_a_new_alert_too(app, client, source, row_counts):
    assert post(client, "/api/v1/alerts", ALERT, source.key).status_code == 201
    change_in_another_process(app, lambda s, src: regenerate_alert_source_key(s, src, now=utcnow()))(source.id)
    before = row_counts()
    refused = post(client, "/api/v1/alerts", {"title": "new one", "external_id": "other"}, source.key)
    assert refused.status_code == 401
    assert row_counts() == before  # nothing written


def test_deactivated_source_is_refused_at_once_and_accepted_again_when_reactivated(app, client, source):
    assert post(client, "/api/v1/alerts", ALERT, source.key).status_code == 201
    change_in_another_process(app, lambda s, src: deactivate_alert_source(s, src, now=utcnow()))(source.id)
    refused = post(client, "/api/v1/alerts", ALERT, source.key)
    assert refused.status_code == 403, refused.get_json()
    change_in_another_process(app, lambda s, src: update_alert_source(s, src, active=True, now=utcnow()))(
        source.id)
    assert post(client, "/api/v1/alerts", ALERT, source.key).status_code == 200  # an inactive copy is re-read


def test_routing_change_applies_to_the_next_alert_with_the_cache_warm(app, client, source, incidents):
    assert post(client, "/api/v1/alerts", ALERT, source.key).status_code == 201
    with app.app_context():
        policy_id = create_policy(db.session, name="night shift").id
        db.session.commit()
    change_in_another_process(app, lambda s, src: update_alert_source(s, src, policy_id=policy_id,
                                                                      now=utcnow()))(source.id)
    assert post(client, "/api/v1/alerts", {"title": "next", "external_id": "next"}, source.key).status_code == 201
    assert [i.policy_id for i in incidents()] == [None, policy_id]


def test_a_repeat_is_one_statement_on_postgresql(app, client, source, backend):
    assert post(client, "/api/v1/alerts", ALERT, source.key).status_code == 201
    post(client, "/api/v1/alerts", ALERT, source.key)  # the 2nd occurrence writes its timeline note
    with statements(app) as seen:
        response = post(client, "/api/v1/alerts", ALERT, source.key)
    assert response.status_code == 200 and response.get_json()["occurrence_count"] == 3
    # No source lookup (cached), no ORM load: take the token and count, together on PostgreSQL.
    seen = [s for s in seen if not s.startswith("BEGIN")]
    assert len(seen) == (1 if backend == "postgresql" else 2), seen
    assert all(s.startswith(("UPDATE", "WITH")) for s in seen), seen


def test_rate_limited_alert_writes_nothing_and_the_next_is_refused_without_a_query(make_app, row_counts):
    app = make_app(ALERT_SOURCE_RATE_LIMIT_CAPACITY="2", ALERT_SOURCE_RATE_LIMIT_REFILL_PER_SECOND="0.01")
    with app.app_context():
        key = create_alert_source(db.session, name="limited", now=utcnow()).key
        db.session.commit()
    client = app.test_client()
    assert post(client, "/api/v1/alerts", ALERT, key).status_code == 201
    assert post(client, "/api/v1/alerts", ALERT, key).status_code == 200
    before = row_counts()
    limited = post(client, "/api/v1/alerts", ALERT, key)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 90
    assert row_counts() == before  # the repeat was not counted
    with statements(app) as seen:
        again = post(client, "/api/v1/alerts", ALERT, key)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 90
    assert seen == []


def test_a_batch_counts_its_repeats_with_one_statement(app, client, make_source, incidents, backend):
    src = make_source(name="am", kind="alertmanager")
    body = samples.ALERTMANAGER
    first = post(client, "/api/v1/webhooks/alertmanager", body, src.key)
    assert first.status_code == 200, first.get_json()
    opened = len(incidents())
    assert opened == len([a for a in body["alerts"] if a["status"] == "firing"]) > 0
    firing = dict(body, alerts=[a for a in body["alerts"] if a["status"] == "firing"] * 3)
    post(client, "/api/v1/webhooks/alertmanager", firing, src.key)  # passes the 2nd occurrence (a note)
    with statements(app) as seen:
        again = post(client, "/api/v1/webhooks/alertmanager", firing, src.key)
    assert again.status_code == 200 and again.get_json()["counts"] == {"repeated": 3 * opened}
    assert all(i.occurrence_count == 7 for i in incidents())
    if backend == "postgresql":
        assert len(seen) == 2, seen  # the token, then every repeat in one UPDATE


def test_a_batch_opens_its_new_incidents_and_pages_each(app, client, make_source, incidents, timeline):
    src = make_source(name="am", kind="alertmanager")
    alert = samples.ALERTMANAGER["alerts"][0]
    many = [dict(alert, status="firing", fingerprint=f"fp-{n:03d}", labels=dict(alert["labels"], n=str(n)))
            for n in range(40)]
    response = post(client, "/api/v1/webhooks/alertmanager", dict(samples.ALERTMANAGER, alerts=many), src.key)
    assert response.status_code == 200 and response.get_json()["counts"] == {"created": 40}
    rows = incidents()
    assert sorted(i.external_id for i in rows) == [f"fp-{n:03d}" for n in range(40)]
    assert all("triggered" in [kind for kind, _, _ in timeline(i.id)] for i in rows)


def load_source_snapshot_for(app, source_id):
    with app.app_context():
        from pagerpal_core.models import AlertSource

        key_hash = db.session.scalar(select(AlertSource.key_hash).where(AlertSource.id == source_id))
        snapshot = load_source_snapshot(db.session, key_hash)
        db.session.remove()
        return snapshot


# --- race-free dedup through the hot path, on both backends ------------------------------

def test_fifty_concurrent_identical_alerts_make_one_incident(engine, session):
    issued = create_alert_source(session, name="storm", now=utcnow())
    session.commit()
    snapshot = load_source_snapshot(session, issued.source.key_hash)
    session.rollback()  # SQLite: a reading session holds the write lock (BEGIN IMMEDIATE) until it ends
    factory = make_session_factory(engine)
    barrier = threading.Barrier(50, timeout=60)
    outcomes, errors = [], []
    alert = AlertEvent(action=TRIGGER, external_id="db-down", title="Database down", description="",
                       severity="critical", details={}, raw={"title": "Database down"}, state="firing")

    def send():
        with factory() as own:
            barrier.wait()
            try:
                [result] = ingest_events(own, snapshot, [alert], now=utcnow(), base_url="http://x",
                                         bucket=TokenBucket(1000, 1000.0), autocommit=True)
                own.commit()
                outcomes.append(result.outcome)
            except Exception as exc:  # collected and shown below
                errors.append(repr(exc))

    threads = [threading.Thread(target=send) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    assert sorted(outcomes) == ["created"] + ["repeated"] * 49
    session.expire_all()
    [incident] = session.scalars(select(Incident)).all()
    assert incident.occurrence_count == 50
    kinds = session.scalars(select(IncidentEvent.kind).where(IncidentEvent.incident_id == incident.id)).all()
    assert kinds.count("triggered") == 1 and kinds.count("repeated") == 1
    assert session.scalar(select(func.count()).select_from(IncidentEvent)) < 10  # no row per repeat


def test_service_refuses_a_stale_snapshot_and_a_spent_bucket(session):
    issued = create_alert_source(session, name="svc", now=utcnow())
    session.commit()
    snapshot = load_source_snapshot(session, issued.source.key_hash)
    alert = AlertEvent(action=TRIGGER, external_id="x", title="x", description="", severity=None, details={},
                       raw={}, state="firing")
    bucket = TokenBucket(1, 0.001)
    ingest_events(session, snapshot, [alert], now=utcnow(), base_url="http://x", bucket=bucket)
    session.commit()
    with pytest.raises(RateLimited):
        ingest_events(session, snapshot, [alert], now=utcnow(), base_url="http://x", bucket=bucket)
    session.rollback()
    regenerate_alert_source_key(session, issued.source, now=utcnow())
    session.commit()
    with pytest.raises(SourceChanged):
        ingest_events(session, snapshot, [alert], now=utcnow(), base_url="http://x", bucket=TokenBucket(10, 1.0))
    session.rollback()
    assert session.get(Incident, 1).occurrence_count == 1
