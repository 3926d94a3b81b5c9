"""Heartbeat monitors: open one incident for each monitor whose ping is overdue, in its own transaction.

(Not to be confused with `heartbeat.py`, the worker's own job_status heartbeat.)
"""

from __future__ import annotations

from datetime import datetime

from pagerpal_core.services.heartbeats import check_heartbeats
from pagerpal_worker.context import WorkerContext


def run(ctx: WorkerContext, now: datetime, limit: int) -> int:
    """Mark overdue monitors missed and page their policies; returns how many incidents were opened."""
    with ctx.session_factory() as session:
        opened = check_heartbeats(session, now=now, base_url=ctx.settings.base_url, limit=limit)
        session.commit()
    return len(opened)
