"""Maintenance windows: page the incidents a window held back once it is over, in its own transaction."""

from __future__ import annotations

from datetime import datetime

from pagerpal_core.services.maintenance import release_maintenance_holds
from pagerpal_worker.context import WorkerContext


def run(ctx: WorkerContext, now: datetime, limit: int) -> int:
    """Release holds whose window ended (on time, early or deleted); returns how many were released."""
    with ctx.session_factory() as session:
        released = release_maintenance_holds(session, now=now, base_url=ctx.settings.base_url, limit=limit)
        session.commit()
    return len(released)
