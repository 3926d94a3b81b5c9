"""Escalate due incidents: the escalation engine's step, in its own transaction.

One step does both kinds of due paging: triggered incidents whose level delay passed move to
the next level, and acknowledged incidents whose snooze or acknowledgement timeout ended go
back to triggered and page level 1 again.
"""

from __future__ import annotations

from datetime import datetime

from pagerpal_core.services.escalation import run_escalation_step
from pagerpal_worker.context import WorkerContext


def run(ctx: WorkerContext, now: datetime, limit: int) -> int:
    """Advance due triggered incidents and re-trigger expired snoozes and ack timeouts; returns how many."""
    with ctx.session_factory() as session:
        count = run_escalation_step(session, now=now, base_url=ctx.settings.base_url, limit=limit)
        session.commit()
    return count
