"""run_cycle on both backends: dispatch, safe mode, retries, leases, cancellation, heartbeats."""

from __future__ import annotations

import base64
import random
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from pagerpal_core.errors import Conflict
from pagerpal_core.models import IncidentEvent, JobStatus, Notification
from pagerpal_core.services.incidents import resolve_incident
from pagerpal_core.services.notifications import RetryPolicy, claim_due_notifications, retry_notification
from pagerpal_core.timeutil import utcnow
from pagerpal_worker.loop import STEPS, Step, run_cycle
from tests.factories import PASSWORD, make_user
from tests.worker.conftest import FAKE_KEY, load, make_incident, notification_ids_received, queue_pages, read


def events(session, incident, kind):
    return read(session, lambda: session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == incident.id, IncidentEvent.kind == kind)).all())


def all_rows(session, model=Notification):
    return read(session, lambda: session.scalars(select(model).order_by(*model.__table__.primary_key)).all())


def test_sends_due_pages_through_the_provider(session, make_ctx, fake_infobip):
    incident = make_incident(session)
    ids = queue_pages(session, incident, 3)
    ctx = make_ctx(fake_infobip.url)
    report = run_cycle(ctx, utcnow())
    assert report.errors == {}
    assert sorted(notification_ids_received(fake_infobip)) == ids
    rows = all_rows(session)
    assert [r.status for r in rows] == ["sent"] * 3
    assert all(r.provider_message_id and r.attempts == 1 and r.lease_expires_at is None for r in rows)
    assert len(events(session, incident, "notification_sent")) == 3
    # Nothing left to do: a second cycle sends nothing more.
    run_cycle(ctx, utcnow())
    assert len(fake_infobip.requests) == 3


def test_pages_not_yet_due_wait(session, make_ctx, fake_infobip):
    now = utcnow()
    queue_pages(session, None, 1, now=now + timedelta(minutes=5))
    run_cycle(make_ctx(fake_infobip.url), now)
    assert fake_infobip.requests == []


def test_safe_mode_suppresses_and_calls_nobody(session, make_ctx, fake_infobip):
    incident = make_incident(session)
    queue_pages(session, incident, 2)
    # Provider fully configured, but sending disabled: the fake must see no request at all.
    ctx = make_ctx(fake_infobip.url, NOTIFICATION_SENDING_ENABLED="false")
    run_cycle(ctx, utcnow())
    rows = all_rows(session)
    assert {r.status for r in rows} == {"suppressed"}
    assert all(r.body.startswith("[CRITICAL] page") for r in rows)  # the rendered message is kept
    assert fake_infobip.requests == []
    assert len(events(session, incident, "notification_suppressed")) == 2


def test_retryable_failures_back_off_then_exhaust_and_manual_retry_sends(session, make_ctx, fake_infobip):
    incident = make_incident(session)
    [nid] = queue_pages(session, incident, 1)
    ctx = make_ctx(fake_infobip.url, NOTIFICATION_MAX_ATTEMPTS=4, NOTIFICATION_RETRY_BASE_SECONDS=10,
                   NOTIFICATION_RETRY_MAX_SECONDS=1000)
    fake_infobip.fail_next(500, count=10)
    now = utcnow()
    delays = []
    for attempt in range(1, 5):
        run_cycle(ctx, now)
        row = load(session, Notification, nid)
        assert row.attempts == attempt
        assert "500" in row.last_error
        if attempt < 4:
            assert row.status == "pending"
            delays.append((row.next_attempt_at - now).total_seconds())
            # One moment before it is due, nothing is sent.
            before = len(fake_infobip.requests)
            run_cycle(ctx, row.next_attempt_at - timedelta(milliseconds=5))
            assert len(fake_infobip.requests) == before
            now = row.next_attempt_at
    assert row.status == "exhausted" and row.next_attempt_at is None
    assert len(fake_infobip.requests) == 4
    # Delays grow: attempt n waits between ½ and 1 × base·2^(n-1).
    assert delays == sorted(delays) and delays[0] < delays[-1]
    for n, delay in enumerate(delays, start=1):
        assert 5 * 2 ** (n - 1) <= delay <= 10 * 2 ** (n - 1)
    assert len(events(session, incident, "notification_failed")) == 1

    fake_infobip.clear()  # the provider is fixed; an operator retries the page
    retry_notification(session, row, actor="ops", now=now)
    session.commit()
    assert row.status == "pending" and row.attempts == 0
    run_cycle(ctx, now + timedelta(seconds=1))
    assert load(session, Notification, nid).status == "sent"
    assert len(fake_infobip.requests) == 5
    assert len(events(session, incident, "notification_retry")) == 1
    with pytest.raises(Conflict):
        retry_notification(session, load(session, Notification, nid), actor="ops", now=now)


def test_permanent_error_exhausts_at_once_and_redacts(session, make_ctx, fake_infobip):
    [nid] = queue_pages(session, None, 1)
    fake_infobip.fail_next(400, text=f"bad request, apikey={FAKE_KEY} " + "x" * 3000)
    run_cycle(make_ctx(fake_infobip.url), utcnow())
    row = load(session, Notification, nid)
    assert row.status == "exhausted" and row.attempts == 1
    assert FAKE_KEY not in row.last_error
    assert len(row.last_error) <= 1000


def test_unconfigured_channel_fails_permanently(session, make_ctx, fake_infobip):
    [nid] = queue_pages(session, None, 1, channel="email")
    run_cycle(make_ctx(fake_infobip.url), utcnow())
    row = load(session, Notification, nid)
    assert row.status == "exhausted" and "SMTP" in row.last_error


def test_pages_of_a_resolved_incident_are_cancelled(session, make_ctx, fake_infobip):
    incident = make_incident(session)
    queue_pages(session, incident, 2)
    resolve_incident(session, incident, actor="ops", now=utcnow())
    session.commit()
    run_cycle(make_ctx(fake_infobip.url), utcnow())
    assert {r.status for r in all_rows(session)} == {"cancelled"}
    assert fake_infobip.requests == []


def test_expired_lease_returns_to_pending_and_counts_an_attempt(session, make_ctx, fake_infobip):
    [a, b] = queue_pages(session, None, 2)
    now = utcnow()
    # A worker that died mid-send: both rows claimed with a 30 s lease, never recorded.
    claim_due_notifications(session, now=now, limit=10, lease_seconds=30, leased_by="dead:1:x")
    session.execute(Notification.__table__.update().where(Notification.id == b).values(attempts=3))
    session.commit()
    ctx = make_ctx(fake_infobip.url, NOTIFICATION_MAX_ATTEMPTS=4)
    run_cycle(ctx, now + timedelta(seconds=29))
    assert fake_infobip.requests == []  # lease still running: untouched
    run_cycle(ctx, now + timedelta(seconds=31))
    row_a, row_b = load(session, Notification, a), load(session, Notification, b)
    assert row_a.status == "sent" and row_a.attempts == 2  # the lost attempt + this one
    assert row_b.status == "exhausted" and row_b.attempts == 4 and "lease expired" in row_b.last_error
    assert notification_ids_received(fake_infobip) == [a]


def test_claims_never_overlap(session, session_factory):
    queue_pages(session, None, 20)
    now = utcnow()
    first, second = session_factory(), session_factory()
    try:
        taken_a = claim_due_notifications(first, now=now, limit=12, lease_seconds=30, leased_by="a")
        first.commit()
        taken_b = claim_due_notifications(second, now=now, limit=12, lease_seconds=30, leased_by="b")
        second.commit()
    finally:
        first.close()
        second.close()
    assert len(taken_a) == 12 and len(taken_b) == 8
    assert not {c.id for c in taken_a} & {c.id for c in taken_b}


@pytest.mark.postgres_only
def test_skip_locked_claims_while_another_claim_is_open(pg_database_url):
    """Two claim transactions open at once on PostgreSQL take disjoint rows without waiting."""
    from pagerpal_core.db import make_engine, make_session_factory

    engine = make_engine(pg_database_url)
    factory = make_session_factory(engine)
    try:
        with factory() as setup:
            queue_pages(setup, None, 10)
        first, second = factory(), factory()
        now = utcnow()
        taken_a = claim_due_notifications(first, now=now, limit=6, lease_seconds=30, leased_by="a")
        # `first` still holds its row locks: SKIP LOCKED lets `second` take the other rows.
        second.execute(text("SET lock_timeout = '2s'"))
        taken_b = claim_due_notifications(second, now=now, limit=6, lease_seconds=30, leased_by="b")
        first.commit()
        second.commit()
        first.close()
        second.close()
        assert len(taken_a) == 6 and len(taken_b) == 4
        assert not {c.id for c in taken_a} & {c.id for c in taken_b}
    finally:
        engine.dispose()


def test_a_failing_step_does_not_stop_the_others(session, make_ctx, fake_infobip):
    [nid] = queue_pages(session, None, 1)
    ctx = make_ctx(fake_infobip.url)

    def broken(_ctx, _now, _limit):
        raise RuntimeError(f"boom with api_key={FAKE_KEY}")

    steps = (Step("broken", broken, batch_limit=1),) + STEPS
    report = run_cycle(ctx, utcnow(), steps)
    assert "RuntimeError" in report.errors["broken"]
    assert load(session, Notification, nid).status == "sent"
    # Heartbeat rows exist for the declared steps, with the leader and no error.
    jobs = {j.name: j for j in all_rows(session, JobStatus)}
    assert set(jobs) == {s.name for s in STEPS}
    assert jobs["notification_retry"].leader_pid == ctx.pid
    assert jobs["notification_retry"].run_count == 1 and jobs["notification_retry"].last_error is None
    assert ctx.stats["broken"].last_error and FAKE_KEY not in ctx.stats["broken"].last_error


def test_heartbeats_mark_disabled_steps_and_count_runs(session, make_ctx):
    ctx = make_ctx(ESCALATION_WORKER_ENABLED="false")
    now = utcnow()
    for i in range(3):
        run_cycle(ctx, now + timedelta(seconds=2 * i))
    jobs = {j.name: j for j in all_rows(session, JobStatus)}
    assert jobs["escalation"].enabled is False
    assert jobs["notification_retry"].enabled is True
    assert jobs["notification_retry"].run_count == 3
    assert jobs["notification_retry"].interval_seconds == pytest.approx(0.2)
    assert jobs["notification_retry"].last_success_at == now + timedelta(seconds=4)
    # Chores run at most every 5 s, not on every cycle or wake-up.
    assert jobs["chores"].run_count == 1 and jobs["chores"].last_success_at == now


def test_heartbeats_visible_in_the_jobs_api(session, make_ctx, client):
    run_cycle(make_ctx(), utcnow())
    user = make_user(session, role="viewer")
    session.commit()
    auth = base64.b64encode(f"{user.email}:{PASSWORD}".encode()).decode()
    response = client.get("/api/v1/system/jobs", headers={"Authorization": f"Basic {auth}"})
    assert response.status_code == 200
    items = {item["name"]: item for item in response.get_json()["items"]}
    assert set(items) == {s.name for s in STEPS}
    assert items["notification_retry"]["stale"] is False
    assert items["notification_retry"]["leader"]["pid"] > 0


def test_retry_policy_delays_grow_and_are_capped():
    policy = RetryPolicy(base_seconds=2, max_seconds=20, max_attempts=10)
    rng = random.Random(7)
    for attempts in range(1, 10):
        ceiling = min(20, 2 * 2 ** (attempts - 1))
        assert ceiling / 2 <= policy.delay(attempts, rng) <= ceiling


def test_flask_cli_runs_the_same_worker_once(session, runner, database_url):
    queue_pages(session, None, 2)
    result = runner.invoke(args=["pagerpal", "worker", "--once"])
    assert result.exit_code == 0, result.output
    # Sending is disabled in the test app: the pages were suppressed, heartbeats written.
    assert {r.status for r in all_rows(session)} == {"suppressed"}
    assert {j.name for j in all_rows(session, JobStatus)} == {s.name for s in STEPS}


def test_once_refuses_to_run_beside_a_leader(runner, database_url):
    from pagerpal_worker.leader import make_leader

    leader = make_leader(database_url)
    try:
        assert leader.try_acquire()
        result = runner.invoke(args=["pagerpal", "worker", "--once"])
        assert result.exit_code == 1
    finally:
        leader.release()


def test_escalation_step_pages_the_next_level_in_the_same_cycle(session, make_ctx, fake_infobip):
    from tests.core.routing_setup import T0, make_world, open_incident

    world = make_world(session, delay=10)
    incident = open_incident(session, world.source, now=T0)
    session.commit()
    # Plain ids: touching an expired object later would open a transaction (and, on SQLite,
    # hold the write lock the worker needs).
    incident_id, ada_id, ben_id = incident.id, world.ada.id, world.ben.id
    ctx = make_ctx(fake_infobip.url)
    run_cycle(ctx, T0 + timedelta(minutes=9))
    level_one = [r for r in all_rows(session) if r.incident_id == incident_id]
    assert {(r.user_id, r.status) for r in level_one if r.channel == "sms"} == {(ada_id, "sent")}
    before = len(fake_infobip.requests)
    report = run_cycle(ctx, T0 + timedelta(minutes=10, seconds=1))
    assert report.errors == {} and report.processed["escalation"] == 1
    rows = [r for r in all_rows(session) if r.incident_id == incident_id and r.user_id == ben_id]
    # Ben's level-2 email page was queued by the escalation step and dispatched right after
    # (no SMTP server is configured here, so it fails permanently: the point is it was tried).
    assert rows and {r.status for r in rows} == {"exhausted"}
    assert len(fake_infobip.requests) == before  # Ben has no SMS; Ada is not paged twice
    assert len(read(session, lambda: session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "escalated")).all())) == 1


def test_sns_fetch_only_reaches_amazon_sns():
    from pagerpal_core.services.sns import sns_url_region
    from pagerpal_worker.steps.chores import FetchRefused, make_sns_fetch

    assert sns_url_region("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=abc")
    assert sns_url_region("https://sns.cn-north-1.amazonaws.com.cn/?Action=ConfirmSubscription")
    fetch = make_sns_fetch(timeout=1)
    for url in ("http://sns.eu-west-1.amazonaws.com/", "https://sns.eu-west-1.amazonaws.com.evil.test/",
                "https://127.0.0.1/", "https://evil.test/sns.eu-west-1.amazonaws.com/", None):
        with pytest.raises(FetchRefused):
            fetch(url)


def test_worker_refuses_an_unmigrated_database_in_production(tmp_path):
    """In production the worker will not run its steps against a schema older than the code."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "ENVIRONMENT": "production", "DATABASE_URL": f"sqlite:///{tmp_path}/empty.db",
           "PAGERPAL_INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 40, "SESSION_COOKIE_SECURE": "true",
           "ALLOWED_ORIGINS": "https://pagerpal.example.com"}
    result = subprocess.run([sys.executable, "-m", "pagerpal_worker.main", "--once"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "migration head" in result.stderr
