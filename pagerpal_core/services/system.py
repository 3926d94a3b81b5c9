"""Worker health as the web, the CLI and the API report it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pagerpal_core.models import JobStatus

STALE_AFTER_INTERVALS = 3
MIN_STALE_SECONDS = 15  # a 1 s poll must not flap to "stale" over one slow cycle


@dataclass
class JobHealth:
    job: JobStatus
    stale: bool


def job_is_stale(job: JobStatus, now: datetime) -> bool:
    """No beat for three intervals (at least MIN_STALE_SECONDS)."""
    if not job.enabled:
        return False
    beat = job.last_started_at
    window = max(STALE_AFTER_INTERVALS * (job.interval_seconds or 1.0), MIN_STALE_SECONDS)
    return beat is None or beat < now - timedelta(seconds=window)


def list_job_health(session: Session, *, now: datetime) -> list[JobHealth]:
    """Every worker step's status row, each with its stale flag."""
    jobs = session.scalars(select(JobStatus).order_by(JobStatus.name))
    return [JobHealth(job, job_is_stale(job, now)) for job in jobs]
