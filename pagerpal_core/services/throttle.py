"""Failed sign-in throttling, shared across web processes through the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagerpal_core.models import AuthThrottle

WINDOW = timedelta(minutes=15)


def blocked_for(session: Session, key: str, *, now: datetime) -> int:
    """Seconds `key` must still wait before trying again (0 = may try now)."""
    row = session.get(AuthThrottle, key)
    if row is None or row.blocked_until is None or row.blocked_until <= now:
        return 0
    return max(1, int((row.blocked_until - now).total_seconds()) + 1)


def record_failure(session: Session, key: str, *, now: datetime, max_failures: int,
                   block_seconds: int) -> int:
    """Count one failure for `key`; returns the block in seconds it triggers (0 = none)."""
    row = session.get(AuthThrottle, key, with_for_update=True)
    if row is None:
        try:
            with session.begin_nested():
                row = AuthThrottle(key=key, failures=0, window_started_at=now)
                session.add(row)
                session.flush()
        except IntegrityError:
            row = session.get(AuthThrottle, key, with_for_update=True, populate_existing=True)
    if row.window_started_at + WINDOW < now:
        row.failures, row.window_started_at = 0, now
    row.failures += 1
    blocked = 0
    if row.failures >= max_failures:
        row.blocked_until = now + timedelta(seconds=block_seconds)
        row.failures, row.window_started_at = 0, now
        blocked = block_seconds
    session.flush()
    return blocked


def record_success(session: Session, key: str) -> None:
    """A successful sign-in clears the failure count for `key`."""
    row = session.get(AuthThrottle, key)
    if row is not None:
        session.delete(row)
        session.flush()
