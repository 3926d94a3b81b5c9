"""Per-source token bucket whose state lives in the `alert_sources` row.

Every gunicorn worker and every web host shares one bucket per source because taking a
token is a single UPDATE ... RETURNING: the database computes the refill from the row's
own `rate_tokens`/`rate_updated_at` and writes the result while holding the row lock, so
two requests can never both spend the last token. The UPDATE only matches when at least
one token is available; a denied request changes nothing.

The web uses it in two steps: `peek_bucket` on the source row it already read for
authentication turns a flood away before any work (no write at all), and `take_token`
runs as the last statement of the ingestion transaction, so the source row stays locked
only for the commit and concurrent alerts of one source are not serialised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from pagerpal_core.db import UTCDateTime, is_postgres
from pagerpal_core.models import AlertSource

# "available" = min(capacity, stored tokens (full when never used) + elapsed seconds × rate).
# Elapsed time is clamped at 0 so a web host whose clock lags never takes tokens away.
_PG_AVAILABLE = ("LEAST(:capacity, COALESCE(rate_tokens, :capacity) + :rate * GREATEST(0, "
                 "EXTRACT(EPOCH FROM (:now - COALESCE(rate_updated_at, :now)))))")
# SQLite stores the timestamps as naive UTC text, which julianday() reads (days → seconds).
_SQLITE_AVAILABLE = ("MIN(:capacity, COALESCE(rate_tokens, :capacity) + :rate * MAX(0, "
                     "(julianday(:now) - julianday(COALESCE(rate_updated_at, :now))) * 86400.0))")


# SQLite's julianday() arithmetic is good to ~10 µs, so "exactly one token after exactly
# one second" can come out a hair under 1; a token counts when it is within 1e-4 of one.
TOKEN_EPSILON = 1e-4


def _take_sql(available: str, greatest: str):
    # Named SQL: take one token from source :source_id if one is available, atomically.
    # The SET expressions read the row being updated, so on PostgreSQL a concurrent
    # update is re-evaluated against the newest row version (no lost updates). The
    # timestamp only moves forward, so requests stamped slightly out of order are safe.
    return text(f"""
        UPDATE alert_sources
           SET rate_tokens = {greatest}(0, {available} - 1),
               rate_updated_at = CASE WHEN rate_updated_at IS NULL THEN :now
                                      ELSE {greatest}(rate_updated_at, :now) END,
               last_alert_at = :now
         WHERE id = :source_id AND {available} >= 1 - {TOKEN_EPSILON}
        RETURNING rate_tokens
    """).bindparams(bindparam("now", type_=UTCDateTime))


TAKE_TOKEN_PG = _take_sql(_PG_AVAILABLE, "GREATEST")
TAKE_TOKEN_SQLITE = _take_sql(_SQLITE_AVAILABLE, "MAX")


@dataclass(frozen=True)
class BucketResult:
    allowed: bool
    remaining: float
    retry_after: int  # seconds until a token is available (0 when allowed)


def available_tokens(tokens: float | None, updated_at: datetime | None, *, now: datetime, capacity: int,
                     refill_per_second: float) -> float:
    """The tokens a bucket holds at `now` (the same arithmetic as the SQL)."""
    available = float(capacity) if tokens is None else float(tokens)
    if updated_at is not None:
        available += max(0.0, (now - updated_at).total_seconds()) * refill_per_second
    return min(float(capacity), available)


def _denied(available: float, refill_per_second: float) -> BucketResult:
    wait = max(0.0, 1.0 - available) / refill_per_second
    return BucketResult(False, available, max(1, math.ceil(wait)))


def peek_bucket(source: AlertSource, *, now: datetime, capacity: int,
                refill_per_second: float) -> BucketResult:
    """Whether `source` (as just read) has a token, without taking it or writing anything.

    A cheap first gate: a source over its limit is refused before its body is parsed.
    `take_token` still decides, atomically, at the end.
    """
    available = available_tokens(source.rate_tokens, source.rate_updated_at, now=now, capacity=capacity,
                                 refill_per_second=refill_per_second)
    if available >= 1 - TOKEN_EPSILON:
        return BucketResult(True, available, 0)
    return _denied(available, refill_per_second)


def take_token(session: Session, source_id: int, *, now: datetime, capacity: int,
               refill_per_second: float) -> BucketResult:
    """Spend one token of `source_id`'s bucket, or say how long to wait for one.

    The UPDATE locks the source's row until the transaction ends: run it last, right
    before the commit, so the lock is held only that long.
    """
    params = {"source_id": source_id, "now": now, "capacity": float(capacity),
              "rate": float(refill_per_second)}
    sql = TAKE_TOKEN_PG if is_postgres(session) else TAKE_TOKEN_SQLITE
    remaining = session.execute(sql, params).scalar()
    if remaining is not None:
        return BucketResult(True, float(remaining), 0)
    # Denied: read the bucket once more only to tell the client when to come back.
    tokens, updated_at = session.execute(
        select(AlertSource.rate_tokens, AlertSource.rate_updated_at).where(AlertSource.id == source_id)
    ).one_or_none() or (None, None)
    return _denied(available_tokens(tokens, updated_at, now=now, capacity=capacity,
                                    refill_per_second=refill_per_second), refill_per_second)
