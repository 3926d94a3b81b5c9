"""The worker loop: a declared list of steps, run in order each cycle, each on its own.

`run_cycle(ctx, now)` runs every enabled step once (tests call it with a chosen `now`);
`serve(ctx, leader)` is the process loop: take leadership (or stand by), run cycles, and
between cycles wait for a NOTIFY wake-up, the poll timeout, or a stop request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError

from pagerpal_core.services.notifications import clean_error
from pagerpal_core.services.self_test import self_test_enabled
from pagerpal_core.services.watchdog import WATCHDOG_EVERY_SECONDS
from pagerpal_core.timeutil import utcnow
from pagerpal_worker import systemd
from pagerpal_worker.context import StepStats, WorkerContext
from pagerpal_worker.leader import Leader, LeadershipError
from pagerpal_worker.steps import (
    chores,
    dispatch,
    escalate,
    heartbeat,
    heartbeat_monitors,
    maintenance,
    self_test,
    watchdog,
)
from pagerpal_worker.steps.self_test import CHECK_EVERY_SECONDS

log = logging.getLogger("pagerpal.worker")

# Reconnecting after a database outage: wait 1, 2, 4 … up to this many seconds.
MAX_BACKOFF_SECONDS = 10.0
# How often a standby tries the lock and notes itself on the job rows.
STANDBY_RECORD_SECONDS = 5.0


def _always(_settings) -> bool:
    return True


@dataclass(frozen=True)
class Step:
    """One named unit of work: `run(ctx, now, limit)` returns how many items it handled."""

    name: str                     # also its job_status row
    run: Callable[[WorkerContext, datetime, int], int]
    batch_limit: int
    enabled: Callable = _always   # settings → bool
    description: str = ""
    # Run at most this often (seconds); None = every cycle, including every NOTIFY wake-up.
    every_seconds: float | None = None

    def is_enabled(self, settings) -> bool:
        """True when the settings turn this step on."""
        return bool(self.enabled(settings))


def _run_heartbeat(ctx: WorkerContext, now: datetime, limit: int) -> int:
    if not heartbeat.due(ctx, now):
        return 0
    return heartbeat.write_heartbeats(ctx, STEPS, now)


STEPS: tuple[Step, ...] = (
    # Escalation first: the pages it queues go out in the same cycle.
    Step("escalation", escalate.run, batch_limit=50, enabled=lambda s: s.escalation_worker_enabled,
         description="page the next level of triggered incidents whose delay has passed"),
    # Before dispatch, so the pages of an incident a window held back go out in the same cycle.
    # At most once a second: a window ends on a minute, and NOTIFY wake-ups (new pages) skip it.
    Step("maintenance", maintenance.run, batch_limit=50, every_seconds=1.0,
         description="page the incidents a maintenance window held back once the window is over"),
    # Before dispatch, so a missed heartbeat's pages go out in the same cycle.
    Step("heartbeat_monitors", heartbeat_monitors.run, batch_limit=50,
         description="open an incident for each heartbeat monitor whose ping is overdue"),
    Step("notification_retry", dispatch.run, batch_limit=100,
         enabled=lambda s: s.notification_retry_worker_enabled,
         description="send due notifications, retry failed ones, recover expired leases"),
    # After dispatch: a run sends its own page through a dispatch pass and may take a few seconds.
    Step("self_test", self_test.run, batch_limit=0, enabled=self_test_enabled, every_seconds=CHECK_EVERY_SECONDS,
         description="end-to-end self-test: synthetic alert via HTTP ingestion, outbox and sender "
                     "(SELF_TEST_INTERVAL_MINUTES)"),
    Step("chores", chores.run, batch_limit=10, every_seconds=5.0,
         description="outbound work the web never does itself: confirm SNS subscriptions"),
    # After the cycle's work, before the heartbeat, so its own job row is written in the same cycle.
    Step("watchdog", watchdog.run, batch_limit=0, every_seconds=WATCHDOG_EVERY_SECONDS,
         description="flag overdue escalations, stuck notifications and stale heartbeats; ping WATCHDOG_PING_URL"),
    Step("heartbeat", _run_heartbeat, batch_limit=0,
         description="write each step's job_status row (at most once per poll interval)"),
)


@dataclass
class CycleReport:
    processed: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    more_work: bool = False       # a step filled its batch: run again without waiting
    database_trouble: bool = False


def run_cycle(ctx: WorkerContext, now: datetime | None = None, steps: tuple[Step, ...] = STEPS) -> CycleReport:
    """Run each enabled step once, in order. A failing step is logged and recorded; the rest run."""
    now = now or utcnow()
    report = CycleReport()
    ctx.more_work = False
    for step in steps:
        if ctx.stop.is_set() and step.name != "heartbeat":
            continue
        if not step.is_enabled(ctx.settings):
            continue
        stats = ctx.stats.setdefault(step.name, StepStats())
        if step.every_seconds and stats.last_started_at is not None and \
                timedelta(0) <= now - stats.last_started_at < timedelta(seconds=step.every_seconds):
            continue
        stats.last_started_at = now
        started = time.monotonic()
        try:
            count = step.run(ctx, now, step.batch_limit)
        except Exception as exc:
            error = clean_error(f"{type(exc).__name__}: {exc}", ctx.settings.secret_values())
            report.errors[step.name] = error
            stats.last_error, stats.last_error_at, stats.dirty_error = error, now, True
            if isinstance(exc, DBAPIError):
                report.database_trouble = True
                log.error("step failed (database)", extra={"fields": {"step": step.name, "error": error}})
            else:
                log.exception("step failed", extra={"fields": {"step": step.name, "error": error}})
        else:
            report.processed[step.name] = count
            stats.last_success_at = now
            if step.batch_limit and count >= step.batch_limit:
                report.more_work = True
        finally:
            stats.runs += 1
            stats.last_duration_ms = round((time.monotonic() - started) * 1000, 2)
    report.more_work = report.more_work or ctx.more_work
    return report


def _backoff(ctx: WorkerContext, delay: float) -> float:
    ctx.stop.wait(delay)
    systemd.watchdog()
    return min(MAX_BACKOFF_SECONDS, delay * 2)


def serve(ctx: WorkerContext, leader: Leader, steps: tuple[Step, ...] = STEPS) -> int:
    """Run until stopped: lead when possible, stand by otherwise. Returns the exit code (0)."""
    poll = ctx.settings.worker_poll_interval
    backoff = 1.0
    standing_by = False
    last_standby_note = 0.0
    while not ctx.stop.is_set():
        try:
            acquired = leader.try_acquire()
        except LeadershipError as exc:
            log.warning("database unreachable; retrying", extra={"fields": {"error": str(exc),
                                                                           "retry_in_s": backoff}})
            systemd.status("waiting for the database")
            backoff = _backoff(ctx, backoff)
            continue
        backoff = 1.0
        if not acquired:
            if not standing_by:
                log.info("another worker leads; standing by", extra={"fields": {"instance": ctx.identity}})
                systemd.status("standing by")
                standing_by = True
            if time.monotonic() - last_standby_note >= STANDBY_RECORD_SECONDS:
                last_standby_note = time.monotonic()
                try:
                    heartbeat.record_standby(ctx, [s.name for s in steps], utcnow())
                except Exception as exc:  # only informational; never fatal
                    log.warning("could not record standby", extra={"fields": {"error": type(exc).__name__}})
            systemd.watchdog()
            ctx.stop.wait(min(poll, 1.0))
            continue
        standing_by = False
        log.info("leading", extra={"fields": {"instance": ctx.identity}})
        systemd.status("leading")
        ctx.last_heartbeat_at = None  # announce the new leader at once
        try:
            _lead(ctx, leader, steps, poll)
        finally:
            leader.release()
        if not ctx.stop.is_set():
            log.warning("leadership lost; stopped work, will try again", extra={"fields": {"instance": ctx.identity}})
            systemd.status("leadership lost")
            backoff = _backoff(ctx, backoff)
    log.info("stopped", extra={"fields": {"instance": ctx.identity}})
    return 0


def _lead(ctx: WorkerContext, leader: Leader, steps: tuple[Step, ...], poll: float) -> None:
    """Cycles while this instance holds leadership; returns on stop or on losing it."""
    while True:
        # Stop first: a stop request is never delayed by one more cycle.
        if ctx.stop.is_set():
            return
        if not leader.still_leader():
            return
        report = run_cycle(ctx, utcnow(), steps)
        systemd.watchdog()
        if report.database_trouble and not leader.still_leader():
            return
        if ctx.stop.is_set():
            return
        if report.database_trouble:
            ctx.stop.wait(min(poll, 1.0))  # the lock holds but queries fail: do not spin
            continue
        if report.more_work:
            continue
        leader.wait(poll, ctx.stop)
