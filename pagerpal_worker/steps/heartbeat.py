"""Heartbeats: one job_status row per step, read by GET /api/v1/system/jobs and /settings."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagerpal_core.models import JobStatus
from pagerpal_core.timeutil import isoformat, parse_iso
from pagerpal_worker.context import WorkerContext

# A standby that has not checked in for this long is dropped from the list.
STANDBY_FORGET_SECONDS = 30


def _lock_row(session: Session, name: str, now: datetime) -> JobStatus:
    """The row for `name`, locked (PostgreSQL) so leader and standbys merge instead of clobber."""
    job = session.execute(select(JobStatus).where(JobStatus.name == name).with_for_update()).scalar_one_or_none()
    if job is not None:
        return job
    try:
        with session.begin_nested():
            job = JobStatus(name=name, run_count=0, standby_instances={}, updated_at=now)
            session.add(job)
    except IntegrityError:  # another instance created it first
        job = session.execute(select(JobStatus).where(JobStatus.name == name).with_for_update()).scalar_one()
    return job


def _fresh_standbys(standbys: dict | None, now: datetime, drop: str | None = None) -> dict:
    keep = {}
    for key, seen in (standbys or {}).items():
        try:
            if key != drop and parse_iso(seen) >= now - timedelta(seconds=STANDBY_FORGET_SECONDS):
                keep[key] = seen
        except (TypeError, ValueError):
            continue
    return keep


def due(ctx: WorkerContext, now: datetime) -> bool:
    """Write at most once per poll interval, unless a step just failed."""
    if ctx.last_heartbeat_at is None or any(s.dirty_error for s in ctx.stats.values()):
        return True
    return now - ctx.last_heartbeat_at >= timedelta(seconds=ctx.settings.worker_poll_interval)


def write_heartbeats(ctx: WorkerContext, steps, now: datetime) -> int:
    """Upsert every step's row with this leader, its counts and last outcome; returns rows written."""
    with ctx.session_factory() as session:
        for step in steps:
            stats = ctx.stats.get(step.name)
            job = _lock_row(session, step.name, now)
            job.enabled = step.is_enabled(ctx.settings)
            job.interval_seconds = ctx.settings.worker_poll_interval
            job.leader_host, job.leader_pid = ctx.host, ctx.pid
            job.standby_instances = _fresh_standbys(job.standby_instances, now, drop=ctx.instance_key)
            if stats is not None:
                job.run_count = (job.run_count or 0) + stats.runs
                job.last_started_at = stats.last_started_at or job.last_started_at
                job.last_success_at = stats.last_success_at or job.last_success_at
                job.last_duration_ms = stats.last_duration_ms
                if stats.last_error_at is not None:
                    job.last_error, job.last_error_at = stats.last_error, stats.last_error_at
            if not job.enabled:
                # A disabled step still "beats" so it never reads as stale.
                job.last_started_at = now
            job.updated_at = now
        session.commit()
    for stats in ctx.stats.values():
        stats.runs = 0
        stats.dirty_error = False
    ctx.last_heartbeat_at = now
    return len(steps)


def record_standby(ctx: WorkerContext, step_names, now: datetime) -> None:
    """A standby notes itself on every step's row so operators can see failover is ready."""
    with ctx.session_factory() as session:
        for name in step_names:
            job = _lock_row(session, name, now)
            standbys = _fresh_standbys(job.standby_instances, now)
            standbys[ctx.instance_key] = isoformat(now)
            job.standby_instances = standbys
        session.commit()
