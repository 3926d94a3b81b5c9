"""Per-source token bucket whose state lives in the `alert_sources` row.

Every gunicorn worker and every web host shares one bucket per source because taking a
token is a single UPDATE ... RETURNING: the database computes the refill from the row's
own `rate_tokens`/`rate_updated_at` and writes the result while holding the row lock, so
two requests can never both spend the last token. The UPDATE only matches when at least
one token is available; a denied request changes nothing.

Ingestion takes the token in the same statement as its dedup write (a repeat) or as the
last statement before the commit (a new incident, whose paging must not run while the
source row is locked), with `take_token_update(..., checked=True)`: that form also
requires the source's key hash, `active` flag and `config_version` to be the ones the
request authenticated against, so a key revoked a moment ago is refused even by a process
that still has the source cached (services/source_cache.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, Update, bindparam, case, func, select, true, update
from sqlalchemy.orm import Session

from pagerpal_core.db import UTCDateTime, is_postgres
from pagerpal_core.models import AlertSource

# SQLite's julianday() arithmetic is good to ~10 µs, so "exactly one token after exactly
# one second" can come out a hair under 1; a token counts when it is within 1e-4 of one.
TOKEN_EPSILON = 1e-4

_sources = AlertSource.__table__
_now = bindparam("now", type_=UTCDateTime)
_capacity = bindparam("capacity", type_=Float)
_rate = bindparam("rate", type_=Float)


def _available(dialect: str):
    # "available" = min(capacity, stored tokens (full when never used) + elapsed seconds × rate).
    # Elapsed time is clamped at 0 so a web host whose clock lags never takes tokens away.
    last = func.coalesce(_sources.c.rate_updated_at, _now)
    if dialect == "postgresql":
        elapsed = func.greatest(0, func.extract("epoch", _now - last))
        return func.least(_capacity, func.coalesce(_sources.c.rate_tokens, _capacity) + _rate * elapsed)
    # SQLite stores the timestamps as naive UTC text, which julianday() reads (days → seconds).
    elapsed = func.max(0, (func.julianday(_now) - func.julianday(last)) * 86400.0)
    return func.min(_capacity, func.coalesce(_sources.c.rate_tokens, _capacity) + _rate * elapsed)


def take_token_update(dialect: str, *, checked: bool) -> Update:
    """Named SQL: take one token from source :source_id if one is available, atomically.

    The SET expressions read the row being updated, so on PostgreSQL a concurrent update
    is re-evaluated against the newest row version (no lost updates). The timestamp only
    moves forward, so requests stamped slightly out of order are safe. `checked` adds the
    authentication check (:expect_key_hash, active, :expect_config_version). Returns `rate_tokens`.
    """
    available = _available(dialect)
    greatest = func.greatest if dialect == "postgresql" else func.max
    conditions = [_sources.c.id == bindparam("source_id"), available >= 1 - TOKEN_EPSILON]
    if checked:
        conditions += [_sources.c.key_hash == bindparam("expect_key_hash"), _sources.c.active == true(),
                       _sources.c.config_version == bindparam("expect_config_version")]
    return (update(_sources).where(*conditions)
            .values(rate_tokens=greatest(0, available - 1),
                    rate_updated_at=case((_sources.c.rate_updated_at.is_(None), _now),
                                         else_=greatest(_sources.c.rate_updated_at, _now)),
                    last_alert_at=_now,
                    # Taking a token is not an edit of the source: keep `updated_at` (whose
                    # onupdate would otherwise stamp it on every alert).
                    updated_at=_sources.c.updated_at)
            .returning(_sources.c.rate_tokens))


TAKE_TOKEN = {(dialect, checked): take_token_update(dialect, checked=checked)
              for dialect in ("postgresql", "sqlite") for checked in (False, True)}

# Named SQL: what a refused take needs to explain itself (bucket state and the checked columns).
_BUCKET_STATE = select(_sources.c.rate_tokens, _sources.c.rate_updated_at, _sources.c.key_hash,
                       _sources.c.active, _sources.c.config_version).where(_sources.c.id == bindparam("source_id"))


@dataclass(frozen=True)
class BucketResult:
    allowed: bool
    remaining: float
    retry_after: int  # seconds until a token is available (0 when allowed)
    wait: float = 0.0  # the same, unrounded


@dataclass(frozen=True)
class TokenBucket:
    """A bucket's settings: at most `capacity` tokens, refilled at `refill_per_second`."""

    capacity: int
    refill_per_second: float

    def params(self, now: datetime) -> dict:
        """The bind parameters the take statement needs."""
        return {"now": now, "capacity": float(self.capacity), "rate": float(self.refill_per_second)}


class SourceChanged(Exception):
    """The source row no longer matches what the request authenticated against (key
    regenerated, source deactivated or edited, or deleted): authenticate again."""


def available_tokens(tokens: float | None, updated_at: datetime | None, *, now: datetime, capacity: int,
                     refill_per_second: float) -> float:
    """The tokens a bucket holds at `now` (the same arithmetic as the SQL)."""
    available = float(capacity) if tokens is None else float(tokens)
    if updated_at is not None:
        available += max(0.0, (now - updated_at).total_seconds()) * refill_per_second
    return min(float(capacity), available)


def _denied(available: float, refill_per_second: float) -> BucketResult:
    wait = max(0.0, 1.0 - available) / refill_per_second
    return BucketResult(False, available, max(1, math.ceil(wait)), wait)


def peek_bucket(source: AlertSource, *, now: datetime, capacity: int,
                refill_per_second: float) -> BucketResult:
    """Whether `source` (as just read) has a token, without taking it or writing anything."""
    available = available_tokens(source.rate_tokens, source.rate_updated_at, now=now, capacity=capacity,
                                 refill_per_second=refill_per_second)
    if available >= 1 - TOKEN_EPSILON:
        return BucketResult(True, available, 0)
    return _denied(available, refill_per_second)


def explain_refusal(session: Session, source_id: int, *, now: datetime, capacity: int, refill_per_second: float,
                    expect=None) -> BucketResult:
    """Why a take matched no row: SourceChanged when the source is not the one `expect`
    describes (any object with key_hash and config_version), else the denied bucket."""
    row = session.execute(_BUCKET_STATE, {"source_id": source_id}).one_or_none()
    if expect is not None and (row is None or row.key_hash != expect.key_hash or not row.active
                               or row.config_version != expect.config_version):
        raise SourceChanged(source_id)
    tokens, updated_at = (row.rate_tokens, row.rate_updated_at) if row is not None else (None, None)
    return _denied(available_tokens(tokens, updated_at, now=now, capacity=capacity,
                                    refill_per_second=refill_per_second), refill_per_second)


def take_token(session: Session, source_id: int, *, now: datetime, capacity: int,
               refill_per_second: float, expect=None) -> BucketResult:
    """Spend one token of `source_id`'s bucket, or say how long to wait for one.

    With `expect` (a SourceSnapshot), the source must still have the key hash, active
    flag and config version the request authenticated against, else SourceChanged.
    The UPDATE locks the source's row until the transaction ends: run it last, right
    before the commit, so the lock is held only that long.
    """
    bucket = TokenBucket(capacity, refill_per_second)
    params = {"source_id": source_id, **bucket.params(now)}
    if expect is not None:
        params.update(expect_key_hash=expect.key_hash, expect_config_version=expect.config_version)
    dialect = "postgresql" if is_postgres(session) else "sqlite"
    remaining = session.execute(TAKE_TOKEN[dialect, expect is not None], params).scalar()
    if remaining is not None:
        return BucketResult(True, float(remaining), 0)
    # Denied: read the bucket once more only to tell the client when to come back.
    return explain_refusal(session, source_id, now=now, capacity=capacity, refill_per_second=refill_per_second,
                           expect=expect)
