"""GET /metrics: Prometheus text that parses, counters that move with alerts, figures from the database."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pagerpal_core.models import JobStatus, Notification
from pagerpal_core.services.alert_sources import create_alert_source
from pagerpal_core.services.escalation_policies import create_policy
from pagerpal_core.timeutil import utcnow
from tests.factories import make_user

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


def scrape(client, **headers) -> dict:
    """{(sample name, sorted labels): value} of one scrape; asserts it parses."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def make_paging_source(session, *, name: str) -> str:
    """A source whose policy pages one user by email; returns the source's key."""
    user = make_user(session, contacts=[{"channel": "email", "destination": f"{name}@example.test"}])
    policy = create_policy(session, name=f"policy-{name}", levels=[
        {"delay_minutes": 5, "targets": [{"type": "user", "id": user.id}]}])
    issued = create_alert_source(session, name=name, policy_id=policy.id, now=utcnow())
    session.commit()
    return issued.key


def post_alert(client, key, body):
    headers = {"X-API-Key": key} if key else {}
    return client.post("/api/v1/alerts", json=body, headers=headers)


def test_counters_and_gauges_move_when_alerts_arrive(make_app, session):
    client = make_app(METRICS="open").test_client()
    name = f"metrics-{uuid.uuid4().hex[:8]}"
    key = make_paging_source(session, name=name)
    before = scrape(client)
    assert value(before, "pagerpal_incidents", status="triggered") == 0

    assert post_alert(client, "ppk_not-a-real-key", {"title": "x"}).status_code == 401
    assert post_alert(client, key, {"title": "Disk full", "external_id": "disk-1"}).status_code == 201
    assert post_alert(client, key, {"title": "Disk full", "external_id": "disk-1"}).status_code == 200
    assert post_alert(client, key, {"external_id": "no title"}).status_code in (400, 422)

    after = scrape(client)
    received = "pagerpal_alerts_received_total"

    def delta(**labels):
        return value(after, received, **labels) - value(before, received, **labels)

    assert delta(source="unknown", result="unauthorized") == 1
    assert delta(source=name, result="created") == 1
    assert delta(source=name, result="repeated") == 1
    assert delta(source=name, result="invalid") == 1
    assert value(after, "pagerpal_incidents", status="triggered") == 1
    # The page is an outbox row before the worker touches it.
    assert value(after, "pagerpal_notifications", channel="email", status="pending") == 1
    assert value(after, "pagerpal_notifications_due") == 1


def test_rate_limited_alerts_are_counted(make_app, session):
    app = make_app(METRICS="open", ALERT_SOURCE_RATE_LIMIT_CAPACITY=1,
                   ALERT_SOURCE_RATE_LIMIT_REFILL_PER_SECOND=0.001)
    client = app.test_client()
    name = f"limited-{uuid.uuid4().hex[:8]}"
    key = make_paging_source(session, name=name)
    before = scrape(client)
    assert post_alert(client, key, {"title": "one"}).status_code == 201
    assert post_alert(client, key, {"title": "two"}).status_code == 429
    after = scrape(client)
    rejected = "pagerpal_rate_limit_rejections_total"
    assert value(after, rejected, scope="alert_source") - value(before, rejected, scope="alert_source") == 1
    received = "pagerpal_alerts_received_total"
    assert value(after, received, source=name, result="rate_limited") \
        - value(before, received, source=name, result="rate_limited") == 1


def test_dispatch_latency_and_worker_figures_come_from_the_database(make_app, session):
    client = make_app(METRICS="open").test_client()
    now = utcnow()
    for queued, sent in ((now - timedelta(seconds=60), now - timedelta(seconds=57)),   # 3 s
                         (now - timedelta(seconds=50), now - timedelta(seconds=5))):   # 45 s
        session.add(Notification(channel="sms", destination="+14155550100", status="sent",
                                 created_at=queued, sent_at=sent, next_attempt_at=None))
    session.add(Notification(channel="email", destination="a@example.test", status="pending",
                             created_at=now - timedelta(seconds=30),
                             next_attempt_at=now - timedelta(seconds=20)))
    session.add(JobStatus(name="dispatch", enabled=True, interval_seconds=1.0, leader_host="host-a",
                          leader_pid=42, last_started_at=now - timedelta(seconds=2),
                          last_success_at=now - timedelta(seconds=2), last_duration_ms=250.0, run_count=7,
                          standby_instances={"host-b:43": now.isoformat()}, updated_at=now))
    session.commit()

    samples = scrape(client)
    latency = "pagerpal_notification_dispatch_latency_seconds"
    assert value(samples, f"{latency}_bucket", le="2.0") == 0
    assert value(samples, f"{latency}_bucket", le="5.0") == 1
    assert value(samples, f"{latency}_bucket", le="30.0") == 1
    assert value(samples, f"{latency}_bucket", le="60.0") == 2
    assert value(samples, f"{latency}_bucket", le="+Inf") == 2
    assert value(samples, f"{latency}_count") == 2
    assert value(samples, f"{latency}_sum") == pytest.approx(48.0, abs=0.01)
    assert value(samples, "pagerpal_notifications", channel="sms", status="sent") == 2
    assert value(samples, "pagerpal_notifications_due") == 1
    assert value(samples, "pagerpal_notifications_oldest_due_seconds") >= 20
    assert value(samples, "pagerpal_worker_step_duration_seconds", step="dispatch") == pytest.approx(0.25)
    assert value(samples, "pagerpal_worker_step_lag_seconds", step="dispatch") >= 2
    assert value(samples, "pagerpal_worker_step_runs_total", step="dispatch") == 7
    assert value(samples, "pagerpal_worker_step_enabled", step="dispatch") == 1
    assert value(samples, "pagerpal_worker_standby_instances") == 1


@pytest.mark.backends("sqlite")
def test_metrics_access_follows_the_setting(make_app):
    assert make_app(METRICS="off").test_client().get("/metrics").status_code == 404
    client = make_app(METRICS="token:placeholder-metrics-token").test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    basic = client.get("/metrics", headers={"Authorization": "Basic placeholder-metrics-token"})
    assert basic.status_code == 401
    scrape(client, Authorization="Bearer placeholder-metrics-token")
    # The token never appears in what is served.
    body = client.get("/metrics", headers={"Authorization": "Bearer placeholder-metrics-token"})
    assert b"placeholder-metrics-token" not in body.data
