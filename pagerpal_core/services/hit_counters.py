"""Fixed-window counters per key, shared by every process through the `auth_throttle` table.

Used for the limits of acting from a page: unknown action-link tokens per client address,
and reply answers per phone number. Keys carry their own prefix ("action-link:",
"reply-answers:"), so they never meet the sign-in throttle's hashed keys in that table.

`count_hit` creates the row if missing (INSERT … ON CONFLICT DO NOTHING, so two first hits
both succeed), then locks it (FOR UPDATE on PostgreSQL; SQLite transactions are already
serialised by BEGIN IMMEDIATE) before counting: concurrent hits never lose a count.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pagerpal_core.models import AuthThrottle

MAX_KEY_LENGTH = 200


def _key(key: str) -> str:
    return key[:MAX_KEY_LENGTH]


def blocked_for(session: Session, key: str, *, now: datetime) -> int:
    """Seconds `key` must still wait (0 = not blocked). Reads only."""
    until = session.scalar(select(AuthThrottle.blocked_until).where(AuthThrottle.key == _key(key)))
    if until is None or until <= now:
        return 0
    return max(1, int((until - now).total_seconds() + 0.999))


def count_hit(session: Session, key: str, *, now: datetime, limit: int, window_seconds: int,
              block_seconds: int) -> int:
    """Count one hit for `key`; returns the seconds it must now wait (0 = this hit is within the limit).

    At most `limit` hits per `window_seconds`; the hit past the limit blocks the key for
    `block_seconds` and starts a new window. Flushes; the caller commits.
    """
    key = _key(key)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(AuthThrottle).values(key=key, failures=0, window_started_at=now)
                    .on_conflict_do_nothing())
    row = session.scalars(select(AuthThrottle).where(AuthThrottle.key == key).with_for_update()
                          .execution_options(populate_existing=True)).one()
    if row.blocked_until is not None and row.blocked_until > now:
        session.flush()
        return max(1, int((row.blocked_until - now).total_seconds() + 0.999))
    if row.window_started_at + timedelta(seconds=window_seconds) <= now:
        row.failures, row.window_started_at = 0, now
    row.failures += 1
    # last_failure_at keeps the sign-in throttle's purge from deleting a counter still in use.
    row.last_failure_at = now
    if row.failures > limit:
        row.blocked_until = now + timedelta(seconds=block_seconds)
        row.failures, row.window_started_at = 0, now
        session.flush()
        return block_seconds
    session.flush()
    return 0
