"""What /metrics reports: event counters kept by the processes, and figures read from the database.

Two kinds of numbers, two homes:

- **Events that leave no row** (an alert rejected with 401, a 429) are prometheus_client
  counters. Under gunicorn every worker process has its own memory, so the gunicorn config
  turns on prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR): each process
  writes its counters to a small mmap file and a scrape sums them all, whichever worker
  answers it. Without that variable (one process: tests, `flask run`) they live in memory.
- **Everything with a row** — incidents, notifications, dispatch latency, worker steps — is
  read from the database at scrape time, so it is the same from every process and host
  and survives restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from pagerpal_core.models import Incident, JobStatus, Notification
from pagerpal_core.models.incidents import STATUSES as INCIDENT_STATUSES
from pagerpal_core.models.notifications import NOTIFICATION_STATUSES
from pagerpal_core.models.users import CHANNELS
from pagerpal_core.services.delivery_health import paging_failed_ids
from pagerpal_core.services.watchdog import WatchdogReport, read_watchdog_report

log = logging.getLogger("pagerpal.metrics")

# In-memory counters register here (not on prometheus_client's global registry, which other
# libraries share); in multiprocess mode the web collects from the files instead.
COUNTER_REGISTRY = CollectorRegistry(auto_describe=True)

ALERTS_RECEIVED = Counter(
    "pagerpal_alerts_received", "Alert events received by the webhook endpoints, by source and result.",
    ["source", "result"], registry=COUNTER_REGISTRY)
RATE_LIMIT_REJECTIONS = Counter(
    "pagerpal_rate_limit_rejections", "Requests refused with 429, by scope (alert_source, sign_in).",
    ["scope"], registry=COUNTER_REGISTRY)

# Seconds from a page being queued to the provider accepting it.
DISPATCH_LATENCY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
UNKNOWN_SOURCE = "unknown"
MAX_LABEL_LENGTH = 120


def _label(value: str | None) -> str:
    return (value or UNKNOWN_SOURCE)[:MAX_LABEL_LENGTH]


def count_alert(source: str | None, result: str, amount: int = 1) -> None:
    """Count `amount` alert events from `source` (its name; None when unauthenticated)."""
    if amount <= 0:
        return
    try:
        ALERTS_RECEIVED.labels(source=_label(source), result=_label(result)).inc(amount)
    except Exception:  # a metrics file problem must never fail an accepted alert
        log.exception("could not count an alert for /metrics")


def count_alerts(source: str | None, results: Iterable[str]) -> None:
    """Count one event per result, e.g. every outcome of one Grafana call."""
    tally: dict[str, int] = {}
    for result in results:
        tally[result] = tally.get(result, 0) + 1
    for result, amount in tally.items():
        count_alert(source, result, amount)


def count_rate_limited(scope: str) -> None:
    """Count one request refused by a rate limit (`alert_source` or `sign_in`)."""
    try:
        RATE_LIMIT_REJECTIONS.labels(scope=_label(scope)).inc()
    except Exception:  # never turn a 429 into a 500
        log.exception("could not count a rate-limit rejection for /metrics")


# --- figures read from the database --------------------------------------------------------

@dataclass
class LatencyHistogram:
    """Cumulative bucket counts (upper bound → count), their sum and total, Prometheus-style."""

    buckets: dict[float, int]
    total: int
    sum_seconds: float


@dataclass
class WorkerStep:
    name: str
    enabled: bool
    lag_seconds: float | None
    duration_seconds: float | None
    runs: int
    last_success: datetime | None
    has_leader: bool


@dataclass
class DatabaseFigures:
    incidents: dict[str, int]
    notifications: dict[tuple[str, str], int]
    dispatch_latency: LatencyHistogram
    notifications_due: int
    oldest_due_seconds: float
    worker_steps: list[WorkerStep] = field(default_factory=list)
    standby_workers: int = 0
    watchdog: WatchdogReport | None = None
    paging_failed: int = 0


def _seconds_between(session: Session, start, end):
    """SQL for `end - start` in seconds on either backend."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    # SQLite keeps naive UTC text; julianday() reads it (days, as a float).
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def dispatch_latency(session: Session) -> LatencyHistogram:
    """created_at → sent_at of every sent notification, bucketed in one aggregate query."""
    seconds = _seconds_between(session, Notification.created_at, Notification.sent_at)
    columns = [func.count(), func.coalesce(func.sum(seconds), 0.0)]
    columns += [func.coalesce(func.sum(case((seconds <= bound, 1), else_=0)), 0)
                for bound in DISPATCH_LATENCY_BUCKETS]
    row = session.execute(select(*columns).where(Notification.sent_at.is_not(None))).one()
    total, sum_seconds, *counts = row
    return LatencyHistogram(dict(zip(DISPATCH_LATENCY_BUCKETS, (int(c) for c in counts), strict=True)),
                            int(total), max(0.0, float(sum_seconds)))


def read_database_figures(session: Session, *, now: datetime, poll_interval: float = 1.0) -> DatabaseFigures:
    """Counts by status, dispatch latency, the due backlog and worker steps, read now.

    Every known status appears (zero when absent) so dashboards never see a series vanish.
    """
    incidents = dict.fromkeys(INCIDENT_STATUSES, 0)
    for status, count in session.execute(select(Incident.status, func.count()).group_by(Incident.status)):
        incidents[status] = int(count)

    notifications = {(channel, status): 0 for channel in CHANNELS for status in NOTIFICATION_STATUSES}
    rows = session.execute(select(Notification.channel, Notification.status, func.count())
                           .group_by(Notification.channel, Notification.status))
    for channel, status, count in rows:
        notifications[(channel, status)] = int(count)

    # The backlog the worker has not picked up yet: the dispatch lag operators page on.
    due_count, oldest = session.execute(
        select(func.count(), func.min(Notification.next_attempt_at))
        .where(Notification.status == "pending", Notification.next_attempt_at <= now)).one()
    oldest_due = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0

    steps, standbys = [], set()
    for job in session.scalars(select(JobStatus).order_by(JobStatus.name)):
        lag = (now - job.last_started_at).total_seconds() if job.last_started_at else None
        steps.append(WorkerStep(
            name=job.name, enabled=bool(job.enabled),
            lag_seconds=max(0.0, lag) if lag is not None else None,
            duration_seconds=job.last_duration_ms / 1000.0 if job.last_duration_ms is not None else None,
            runs=int(job.run_count or 0), last_success=job.last_success_at,
            has_leader=bool(job.leader_host)))
        standbys.update((job.standby_instances or {}).keys())

    return DatabaseFigures(incidents=incidents, notifications=notifications,
                           dispatch_latency=dispatch_latency(session), notifications_due=int(due_count),
                           oldest_due_seconds=oldest_due, worker_steps=steps, standby_workers=len(standbys),
                           watchdog=read_watchdog_report(session, now=now, poll_interval=poll_interval),
                           paging_failed=len(paging_failed_ids(session)))
