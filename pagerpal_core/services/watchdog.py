"""The escalation watchdog: does paging still move? Findings the worker records and the web reports.

Each run looks for three kinds of silence:

- **overdue escalations** — triggered incidents whose `next_escalation_at` passed more than two
  poll intervals ago: due, but the escalation step has not processed them (it is disabled,
  failing, or stuck);
- **stuck notifications** — rows still `sending` more than two poll intervals after their lease
  ran out (lease recovery is not running, so those pages are neither sent nor retried);
- **stale worker jobs** — a step's job_status heartbeat older than expected (`system.job_is_stale`).

The worker stores the latest report in the `app_state` row `watchdog` (JSON), so /settings,
/metrics and GET /api/v1/system/jobs read one place. A report older than expected is itself a
finding: the worker that should write it is not running (`read_watchdog_report` says so). The
worker also pings WATCHDOG_PING_URL after each healthy run, so an outside monitor notices a dead
PagerPal even when nothing inside it can.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagerpal_core.models import AppState, Incident, Notification
from pagerpal_core.services.system import MIN_STALE_SECONDS, STALE_AFTER_INTERVALS, list_job_health
from pagerpal_core.timeutil import isoformat, parse_iso

STATE_KEY = "watchdog"
# "Overdue" means late by more than this many poll intervals: the escalation step runs every
# cycle, so anything later than that was skipped, not merely queued behind a busy cycle.
OVERDUE_INTERVALS = 2
# How many ids of each finding the report keeps (the counts are exact).
MAX_IDS = 5
# The watchdog's own step runs at most this often; its report is stale after STALE_AFTER_INTERVALS
# of these (at least MIN_STALE_SECONDS).
WATCHDOG_EVERY_SECONDS = 10.0


@dataclass
class WatchdogReport:
    """One watchdog run: what it found, and how the outside ping went."""

    checked_at: datetime
    overdue_escalations: int = 0
    overdue_incident_ids: list[int] = field(default_factory=list)
    oldest_overdue_seconds: float = 0.0
    stuck_notifications: int = 0
    stuck_notification_ids: list[int] = field(default_factory=list)
    stale_jobs: list[str] = field(default_factory=list)
    ping: str | None = None  # "200", "error: Timeout", None = not configured / not healthy
    # Set when read back: the report is older than expected (the worker is not running).
    report_stale: bool = False

    @property
    def healthy(self) -> bool:
        """No finding at all (and a fresh report)."""
        return not (self.overdue_escalations or self.stuck_notifications or self.stale_jobs or self.report_stale)

    @property
    def problems(self) -> list[str]:
        """Each finding as one plain sentence, for /settings and logs."""
        out = []
        if self.report_stale:
            out.append(f"the watchdog has not run since {isoformat(self.checked_at)}: is the worker running?")
        if self.overdue_escalations:
            out.append(f"{self.overdue_escalations} incident(s) overdue for escalation (e.g. "
                       f"{', '.join(f'#{i}' for i in self.overdue_incident_ids)}; the oldest by "
                       f"{round(self.oldest_overdue_seconds)} s)")
        if self.stuck_notifications:
            out.append(f"{self.stuck_notifications} notification(s) stuck in sending past their lease (e.g. "
                       f"{', '.join(f'#{i}' for i in self.stuck_notification_ids)})")
        if self.stale_jobs:
            out.append(f"worker job heartbeat older than expected: {', '.join(self.stale_jobs)}")
        return out

    def as_dict(self) -> dict:
        """The JSON shape stored in app_state and served by the API."""
        return {"checked_at": isoformat(self.checked_at), "healthy": self.healthy,
                "overdue_escalations": self.overdue_escalations, "overdue_incident_ids": self.overdue_incident_ids,
                "oldest_overdue_seconds": round(self.oldest_overdue_seconds, 1),
                "stuck_notifications": self.stuck_notifications,
                "stuck_notification_ids": self.stuck_notification_ids, "stale_jobs": self.stale_jobs,
                "ping": self.ping, "report_stale": self.report_stale, "problems": self.problems}


def _threshold(poll_interval: float) -> timedelta:
    return timedelta(seconds=OVERDUE_INTERVALS * poll_interval)


def check_watchdog(session: Session, *, now: datetime, poll_interval: float,
                   ignore_jobs: tuple[str, ...] = ()) -> WatchdogReport:
    """Look for overdue escalations, stuck notifications and stale job heartbeats (reads only)."""
    cutoff = now - _threshold(poll_interval)
    report = WatchdogReport(checked_at=now)
    # Both queries use the partial indexes the worker's own claims use.
    overdue = (Incident.status == "triggered") & Incident.next_escalation_at.is_not(None) \
        & (Incident.next_escalation_at < cutoff)
    count, oldest = session.execute(select(func.count(), func.min(Incident.next_escalation_at))
                                    .where(overdue)).one()
    report.overdue_escalations = int(count)
    if count:
        report.oldest_overdue_seconds = max(0.0, (now - oldest).total_seconds())
        report.overdue_incident_ids = list(session.scalars(
            select(Incident.id).where(overdue).order_by(Incident.next_escalation_at, Incident.id).limit(MAX_IDS)))
    stuck = (Notification.status == "sending") & Notification.lease_expires_at.is_not(None) \
        & (Notification.lease_expires_at < cutoff)
    report.stuck_notifications = int(session.scalar(select(func.count()).where(stuck)))
    if report.stuck_notifications:
        report.stuck_notification_ids = list(session.scalars(
            select(Notification.id).where(stuck).order_by(Notification.lease_expires_at).limit(MAX_IDS)))
    report.stale_jobs = [h.job.name for h in list_job_health(session, now=now)
                         if h.stale and h.job.name not in ignore_jobs]
    return report


def store_watchdog_report(session: Session, report: WatchdogReport) -> None:
    """Upsert the `watchdog` app_state row with `report` (the caller commits)."""
    value = json.dumps(report.as_dict() | {"problems": []}, separators=(",", ":"))
    row = session.get(AppState, STATE_KEY, populate_existing=True)
    if row is None:
        try:
            with session.begin_nested():
                session.add(AppState(key=STATE_KEY, value=value, created_at=report.checked_at))
            return
        except IntegrityError:  # written by another instance a moment ago: update it instead
            row = session.get(AppState, STATE_KEY, populate_existing=True)
    row.value = value
    session.flush()


def report_stale_after(poll_interval: float) -> timedelta:
    """How old a stored report may get before it means the worker stopped."""
    every = max(WATCHDOG_EVERY_SECONDS, poll_interval)
    return timedelta(seconds=max(STALE_AFTER_INTERVALS * every, MIN_STALE_SECONDS))


def read_watchdog_report(session: Session, *, now: datetime, poll_interval: float) -> WatchdogReport | None:
    """The last stored report (None before the first run), flagged stale when the worker stopped writing."""
    row = session.get(AppState, STATE_KEY)
    if row is None:
        return None
    try:
        data = json.loads(row.value)
        report = WatchdogReport(
            checked_at=parse_iso(data["checked_at"]),
            overdue_escalations=int(data.get("overdue_escalations", 0)),
            overdue_incident_ids=[int(i) for i in data.get("overdue_incident_ids", [])],
            oldest_overdue_seconds=float(data.get("oldest_overdue_seconds", 0.0)),
            stuck_notifications=int(data.get("stuck_notifications", 0)),
            stuck_notification_ids=[int(i) for i in data.get("stuck_notification_ids", [])],
            stale_jobs=[str(j) for j in data.get("stale_jobs", [])], ping=data.get("ping"))
    except (ValueError, TypeError, KeyError):
        return None  # an unreadable row reads as "never ran"; the next run rewrites it
    report.report_stale = report.checked_at < now - report_stale_after(poll_interval)
    return report
