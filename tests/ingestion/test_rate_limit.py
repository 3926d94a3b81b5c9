"""The per-source token bucket in the database, on both backends, with a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pagerpal_core.models import AlertSource
from pagerpal_core.services.alert_sources import create_alert_source
from pagerpal_core.services.rate_limit import take_token

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def take(session, source_id, at, capacity=3, rate=1.0):
    result = take_token(session, source_id, now=at, capacity=capacity, refill_per_second=rate)
    session.commit()
    return result


def test_bucket_empties_then_refills(session):
    source = create_alert_source(session, name="src", now=T0).source
    session.commit()
    assert [take(session, source.id, T0).allowed for _ in range(3)] == [True, True, True]
    denied = take(session, source.id, T0)
    assert not denied.allowed and denied.retry_after == 1
    half = take(session, source.id, T0 + timedelta(milliseconds=500))
    assert not half.allowed  # half a token is not a token
    refilled = take(session, source.id, T0 + timedelta(seconds=1.5))
    assert refilled.allowed and abs(refilled.remaining - 0.5) < 1e-3  # SQLite julianday: ~50 µs resolution
    assert not take(session, source.id, T0 + timedelta(seconds=1.5)).allowed
    # A long quiet spell refills to capacity, never beyond.
    later = T0 + timedelta(hours=1)
    assert [take(session, source.id, later).allowed for _ in range(4)] == [True, True, True, False]


def test_denied_request_changes_nothing_and_retry_after_scales(session):
    source = create_alert_source(session, name="slow", now=T0).source
    session.commit()
    take(session, source.id, T0, capacity=1, rate=0.1)
    session.expire_all()
    before = session.get(AlertSource, source.id)
    state = (before.rate_tokens, before.rate_updated_at)
    denied = take(session, source.id, T0 + timedelta(seconds=2), capacity=1, rate=0.1)
    assert not denied.allowed and denied.retry_after == 8  # 0.2 of a token refilled, 0.8 to go at 0.1/s
    session.expire_all()
    after = session.get(AlertSource, source.id)
    assert (after.rate_tokens, after.rate_updated_at) == state


def test_buckets_are_per_source(session):
    a = create_alert_source(session, name="a", now=T0).source
    b = create_alert_source(session, name="b", now=T0).source
    session.commit()
    assert take(session, a.id, T0, capacity=1).allowed
    assert not take(session, a.id, T0, capacity=1).allowed
    assert take(session, b.id, T0, capacity=1).allowed


def test_clock_going_backwards_adds_no_tokens(session):
    source = create_alert_source(session, name="skew", now=T0).source
    session.commit()
    assert take(session, source.id, T0, capacity=1).allowed
    # Another web host whose clock is behind: no negative refill, and no free token.
    assert not take(session, source.id, T0 - timedelta(seconds=30), capacity=1).allowed
    assert take(session, source.id, T0 + timedelta(seconds=1), capacity=1).allowed


def test_successful_take_records_last_alert_time(session):
    source = create_alert_source(session, name="seen", now=T0).source
    session.commit()
    take(session, source.id, T0 + timedelta(seconds=5))
    session.expire_all()
    assert session.get(AlertSource, source.id).last_alert_at == T0 + timedelta(seconds=5)


def test_peek_reads_the_row_without_writing(session):
    from pagerpal_core.services.rate_limit import peek_bucket

    source = create_alert_source(session, name="peek", now=T0).source
    session.commit()
    assert peek_bucket(source, now=T0, capacity=1, refill_per_second=0.5).allowed  # never used: full
    take(session, source.id, T0, capacity=1, rate=0.5)
    session.refresh(source)
    empty = peek_bucket(source, now=T0, capacity=1, refill_per_second=0.5)
    assert not empty.allowed and empty.retry_after == 2
    assert peek_bucket(source, now=T0 + timedelta(seconds=2), capacity=1, refill_per_second=0.5).allowed


def test_web_answers_429_with_retry_after_and_writes_nothing(make_app, database_url):
    from tests.ingestion.conftest import post

    app = make_app(ALERT_SOURCE_RATE_LIMIT_CAPACITY="2", ALERT_SOURCE_RATE_LIMIT_REFILL_PER_SECOND="0.01")
    from pagerpal_web.extensions import db

    with app.app_context():
        key = create_alert_source(db.session, name="web", now=datetime.now(UTC)).key
        db.session.commit()
    client = app.test_client()
    assert [post(client, "/api/v1/alerts", {"title": f"a{i}"}, key).status_code for i in range(2)] == [201, 201]
    limited = post(client, "/api/v1/alerts", {"title": "a3"}, key)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 90  # one token at 0.01/s
    assert limited.get_json()["error"]["code"] == "rate_limited"
    with app.app_context():
        from sqlalchemy import func, select

        from pagerpal_core.models import Incident
        assert db.session.scalar(select(func.count()).select_from(Incident)) == 2
