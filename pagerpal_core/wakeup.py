"""Waking the worker: on PostgreSQL a NOTIFY in the same transaction as the new work.

NOTIFY is delivered only when the transaction commits, so the worker never wakes for work
it cannot see yet. SQLite has no NOTIFY; the worker's poll interval covers it.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from pagerpal_core.db import is_postgres

# The LISTEN/NOTIFY channel the worker listens on for new outbox rows and changed
# escalation timing.
WAKEUP_CHANNEL = "pagerpal_wakeup"


def notify_new_work(session: Session) -> None:
    """Ask the worker to look for due work right after this transaction commits."""
    if is_postgres(session):
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WAKEUP_CHANNEL})
