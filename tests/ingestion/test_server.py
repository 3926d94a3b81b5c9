"""Ingestion against a real gunicorn process (2 workers) on PostgreSQL: races, rate limit, logs."""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from pagerpal_core.db import make_engine, make_session_factory
from pagerpal_core.models import Incident, IncidentEvent
from pagerpal_core.services.alert_sources import create_alert_source, regenerate_alert_source_key
from pagerpal_core.timeutil import utcnow
from tests.ingestion import samples
from tests.ingestion.server import GunicornServer

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]


@pytest.fixture
def pg_session(pg_database_url):
    engine = make_engine(pg_database_url)
    session = make_session_factory(engine)()
    yield session
    session.close()
    engine.dispose()


def new_source(session, name, **kwargs):
    issued = create_alert_source(session, name=name, now=utcnow(), **kwargs)
    session.commit()
    return issued


def test_fifty_concurrent_alerts_make_one_incident_and_no_key_reaches_the_logs(pg_database_url, pg_session,
                                                                             tmp_path):
    # Both halves want the same server (rate limit lifted), so they share one start of it.
    with GunicornServer(pg_database_url, tmp_path, ALERT_SOURCE_RATE_LIMIT_CAPACITY=1000) as server:
        fifty_concurrent_identical_alerts_make_one_incident(server, pg_session)
        keys_never_reach_the_logs(server, pg_session)


def fifty_concurrent_identical_alerts_make_one_incident(server, pg_session):
    issued = new_source(pg_session, "storm")
    alert = {"title": "Database down", "external_id": "db-down", "severity": "critical"}
    barrier = threading.Barrier(50, timeout=30)

    def send(_):
        barrier.wait()  # all 50 leave together
        return requests.post(server.url + "/api/v1/alerts", json=alert, headers={"X-API-Key": issued.key},
                             timeout=60)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(send, range(50)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 49 + [201], [r.text[:200] for r in responses if r.status_code >= 300]
    assert len({r.json()["incident_id"] for r in responses}) == 1
    [incident] = pg_session.scalars(select(Incident)).all()
    assert (incident.status, incident.occurrence_count) == ("triggered", 50)
    kinds = pg_session.scalars(select(IncidentEvent.kind).where(IncidentEvent.incident_id == incident.id)).all()
    assert kinds.count("triggered") == 1 and kinds.count("repeated") == 1
    assert kinds.count("repeats_summarised") == 1  # at the 10th occurrence; the rest waits in repeats_unlogged
    assert incident.repeats_unlogged == 40


def test_rate_limit_holds_across_two_gunicorn_workers(pg_database_url, pg_session, tmp_path):
    issued = new_source(pg_session, "limited")
    barrier = threading.Barrier(40, timeout=30)

    def send(i):
        barrier.wait()
        # A fresh connection each: gunicorn hands connections to whichever worker accepts.
        return requests.post(server.url + "/api/v1/alerts", json={"title": f"alert {i}"},
                             headers={"X-API-Key": issued.key, "Connection": "close"}, timeout=60)

    # Sync workers (one request at a time each): the burst has to be shared by both.
    with GunicornServer(pg_database_url, tmp_path, threads=1, ALERT_SOURCE_RATE_LIMIT_CAPACITY=10,
                        ALERT_SOURCE_RATE_LIMIT_REFILL_PER_SECOND=0.001) as server:
        with ThreadPoolExecutor(max_workers=40) as pool:
            responses = list(pool.map(send, range(40)))
        log = server.log()

    accepted = [r for r in responses if r.status_code == 201]
    limited = [r for r in responses if r.status_code == 429]
    assert len(accepted) == 10 and len(limited) == 30, sorted(r.status_code for r in responses)
    for response in limited:
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["error"]["code"] == "rate_limited"
    assert pg_session.scalar(select(func.count()).select_from(Incident)) == 10
    access = [json.loads(line) for line in log.splitlines()
              if line.startswith("{") and '"gunicorn.access"' in line]
    pids = {line["pid"] for line in access if line["path"] == "/api/v1/alerts"}
    assert len(pids) == 2, "both workers should have served alerts"


def keys_never_reach_the_logs(server, pg_session):
    issued = new_source(pg_session, "logged")
    pd = new_source(pg_session, "pd", kind="pagerduty")
    old_key = issued.key
    url = server.url
    basic = base64.b64encode(f"sns:{issued.key}".encode()).decode()
    calls = [
        dict(json={"title": "header"}, headers={"X-API-Key": issued.key}),
        dict(json={"title": "bearer"}, headers={"Authorization": f"Bearer {issued.key}"}),
        dict(json={"title": "basic"}, headers={"Authorization": f"Basic {basic}"}),
        dict(json={"title": "query"}, params={"api_key": issued.key}),
        dict(json={"nope": 1}, headers={"X-API-Key": issued.key}),                 # 422
        dict(data=b"{broken", headers={"X-API-Key": issued.key}),                  # 400
        dict(json={"title": "x"}, headers={"X-API-Key": issued.key + "tampered"}),  # 401
        dict(json={"title": "x"}, params={"api_key": issued.key + "tampered"}),    # 401
    ]
    for call in calls:
        requests.post(url + "/api/v1/alerts", timeout=30, **call)
    requests.post(url + "/api/v1/webhooks/pagerduty", json=samples.pagerduty_event(routing_key=pd.key),
                  timeout=30)
    requests.post(url + "/api/v1/webhooks/pagerduty", json={"routing_key": pd.key, "event_action": "bad"},
                  timeout=30)
    requests.post(url + "/api/v1/webhooks/cloudwatch", data=json.dumps(samples.sns_notification()),
                  headers={"Content-Type": "text/plain"}, auth=("sns", issued.key), timeout=30)
    regenerated = regenerate_alert_source_key(pg_session, issued.source, now=utcnow())
    pg_session.commit()
    assert requests.post(url + "/api/v1/alerts", json={"title": "old"}, headers={"X-API-Key": old_key},
                         timeout=30).status_code == 401
    assert requests.post(url + "/api/v1/alerts", json={"title": "new"},
                         headers={"X-API-Key": regenerated.key}, timeout=30).status_code == 201
    log = server.log()
    # The logs were really captured: gunicorn's access line, and the app's with the outcome.
    assert '"gunicorn.access"' in log and '"outcomes": {"created": 1}' in log
    assert "query string" in log  # the ?api_key= warning is there, without the key
    for key in (old_key, regenerated.key, pd.key):
        assert key not in log
        assert key[4:] not in log
