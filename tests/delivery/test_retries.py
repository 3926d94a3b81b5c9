"""Retries bounded by time: outages ride out, 429 pauses the provider, the backlog drains oldest first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from pagerpal_core.models import Notification, ProviderPause
from pagerpal_core.services.notifications import RetryPolicy, claim_due_notifications, record_send_outcome
from pagerpal_core.timeutil import utcnow
from pagerpal_worker.loop import run_cycle
from pagerpal_worker.providers.infobip import parse_retry_after
from tests.worker.conftest import load, make_incident, notification_ids_received, queue_pages, read
from tests.worker.conftest import status_counts as _status_counts


# Production's retry timing (worker tests shorten it).
def status_counts(session) -> dict[str, int]:
    """Counts by status, in a transaction of its own (an open one would block the worker on SQLite)."""
    return read(session, lambda: _status_counts(session))


DEFAULT_RETRIES = {"NOTIFICATION_MAX_ATTEMPTS": 0, "NOTIFICATION_RETRY_BASE_SECONDS": 10,
                   "NOTIFICATION_RETRY_MAX_SECONDS": 600, "NOTIFICATION_RETRY_WINDOW_SECONDS": 900}


# What this shows is RetryPolicy's timing over many cycles. The SQL each cycle runs (claiming due
# pages, recording outcomes, due times) is shown on both backends by the other tests here and in
# tests/worker/test_cycle.py; repeating it 50 times on PostgreSQL added nothing.
@pytest.mark.backends("sqlite")
def test_two_minute_outage_every_page_delivered_after_it_none_exhausted(session, make_ctx, fake_infobip):
    ctx = make_ctx(fake_infobip.url, **DEFAULT_RETRIES)
    start = utcnow()
    fake_infobip.plan(status=503, count=None)  # every request answers 503
    ids: list[int] = []
    step = 5
    for second in range(0, 121, step):
        now = start + timedelta(seconds=second)
        if second % 10 == 0:  # a new page every 10 s during the outage
            incident = make_incident(session, title=f"Outage page {second}")
            ids += queue_pages(session, incident, 1, now=now, first_number=15550000000 + second)
        run_cycle(ctx, now)
    outage_requests = len(fake_infobip.requests)
    assert outage_requests >= len(ids)  # every page was tried during the outage
    assert status_counts(session) == {"pending": len(ids)}
    fake_infobip.clear()  # the provider is back
    for second in range(121, 121 + 900, step):
        run_cycle(ctx, start + timedelta(seconds=second))
        if status_counts(session) == {"sent": len(ids)}:
            break
    assert status_counts(session) == {"sent": len(ids)}  # all delivered, 0 exhausted
    assert sorted(set(notification_ids_received(fake_infobip))) == ids


def test_retries_stop_at_the_window_not_a_count(session, make_ctx, fake_infobip):
    ctx = make_ctx(fake_infobip.url, **{**DEFAULT_RETRIES, "NOTIFICATION_RETRY_WINDOW_SECONDS": 300})
    [nid] = queue_pages(session, make_incident(session), 1)
    fake_infobip.plan(status=500, count=None)
    start = utcnow()
    now = start
    for _ in range(50):
        run_cycle(ctx, now)
        row = load(session, Notification, nid)
        if row.status != "pending":
            break
        assert row.next_attempt_at <= start + timedelta(seconds=300)  # never scheduled past the window
        now = row.next_attempt_at
    assert row.status == "exhausted"
    assert row.attempts > 5  # more tries than the old fixed count, bounded by time instead
    assert row.first_attempt_at == start


def test_retrying_page_of_an_acknowledged_incident_stops(session, make_ctx, fake_infobip):
    ctx = make_ctx(fake_infobip.url, **DEFAULT_RETRIES)
    incident = make_incident(session)
    [nid] = queue_pages(session, incident, 1)
    fake_infobip.plan(status=500, count=None)
    now = utcnow()
    run_cycle(ctx, now)
    assert load(session, Notification, nid).status == "pending"
    # Acknowledged while the row is being sent: its outcome cancels instead of retrying.
    row = load(session, Notification, nid)
    row.status, row.leased_by = "sending", ctx.identity
    incident.status = "acknowledged"
    session.commit()
    status = record_send_outcome(session, nid, outcome="retryable", leased_by=ctx.identity, now=now,
                                 policy=RetryPolicy(), error="503")
    session.commit()
    assert status == "cancelled"


def test_429_retry_after_pauses_every_send_to_that_provider(session, make_ctx, fake_infobip):
    ctx = make_ctx(fake_infobip.url, **DEFAULT_RETRIES)
    incident = make_incident(session)
    now = utcnow()
    [first] = queue_pages(session, incident, 1, now=now)
    fake_infobip.plan(status=429, count=1)  # answers Retry-After: 1
    run_cycle(ctx, now)
    pause = read(session, lambda: session.scalars(select(ProviderPause)).one())
    # Outcome times are the cycle's clock plus the real time the send took.
    assert pause.provider == "infobip"
    assert now + timedelta(seconds=1) <= pause.paused_until < now + timedelta(seconds=5)
    # A new page to another number, due now, waits for the pause too: the provider asked us to.
    [second] = queue_pages(session, incident, 1, now=now, first_number=15559990000)
    before = len(fake_infobip.requests)
    run_cycle(ctx, now + timedelta(milliseconds=500))
    assert len(fake_infobip.requests) == before
    assert load(session, Notification, second).status == "pending"
    # After the pause both go out; the retried one waited at least Retry-After.
    for ms in range(1100, 30000, 500):
        run_cycle(ctx, now + timedelta(milliseconds=ms))
        if status_counts(session) == {"sent": 2}:
            break
    assert status_counts(session) == {"sent": 2}
    assert load(session, Notification, first).attempts == 2


def test_backlog_drains_oldest_first(session):
    now = utcnow()
    incident = make_incident(session)
    ids = queue_pages(session, incident, 3, now=now - timedelta(seconds=30))
    # The oldest page's retry fell due last (jitter); it is still claimed first.
    rows = read(session, lambda: [session.get(Notification, i) for i in ids])
    for row, ago in zip(rows, (1, 20, 10), strict=True):
        row.next_attempt_at = now - timedelta(seconds=ago)
    session.commit()
    claimed = claim_due_notifications(session, now=now, limit=1, lease_seconds=60, leased_by="test")
    session.commit()
    assert [c.id for c in claimed] == [ids[0]]


def test_parse_retry_after():
    now = utcnow()
    assert parse_retry_after("7") == 7
    assert parse_retry_after("") is None and parse_retry_after("soon") is None and parse_retry_after("-3") is None
    assert parse_retry_after("999999") == 3600  # a typo never silences pages for days
    http_date = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 28 <= parse_retry_after(http_date, now=now) <= 31
