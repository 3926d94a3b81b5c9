"""Escalate due incidents: the escalation service's step, in its own transaction."""

from __future__ import annotations

from datetime import datetime

from pagerpal_worker.context import WorkerContext
from pagerpal_worker.steps.optional import optional_service

SERVICE = ("pagerpal_core.services.escalation", "run_escalation_step")


def run(ctx: WorkerContext, now: datetime, limit: int) -> int:
    """Advance triggered incidents whose level delay has passed; returns how many moved."""
    run_escalation_step = optional_service(ctx, *SERVICE)
    if run_escalation_step is None:
        return 0
    with ctx.session_factory() as session:
        count = run_escalation_step(session, now=now, base_url=ctx.settings.base_url, limit=limit)
        session.commit()
    return count or 0
