"""The escalation watchdog step: check that paging still moves, record the findings, ping outside.

It reads in one short transaction, pings WATCHDOG_PING_URL (when set and nothing was found)
outside any transaction, then stores the report in a second one. The ping is a GET with a
short timeout that never follows a redirect (a redirect could send the worker anywhere) and
never reads the body: the status code is all it needs.
"""

from __future__ import annotations

import logging
from datetime import datetime

import requests

from pagerpal_core.logs import log_fields
from pagerpal_core.services.notifications import clean_error
from pagerpal_core.services.watchdog import check_watchdog, store_watchdog_report
from pagerpal_worker.context import WorkerContext

log = logging.getLogger("pagerpal.worker.watchdog")

# The ping runs inside the worker's cycle, so it may delay paging by at most this long.
PING_TIMEOUT_SECONDS = 2.0
MAX_PING_NOTE = 100
WATCHDOG_JOB = "watchdog"


def ping_outside(url: str, *, timeout: float, secrets: list[str]) -> str:
    """GET `url` once; returns its status code as text, or "error: <what>" (secrets redacted)."""
    try:
        with requests.get(url, timeout=timeout, allow_redirects=False, stream=True) as response:
            return str(response.status_code)
    except requests.RequestException as exc:
        return clean_error(f"error: {type(exc).__name__}", secrets)[:MAX_PING_NOTE]


def run(ctx: WorkerContext, now: datetime, limit: int) -> int:
    """One watchdog run; returns how many problems it found (0 when healthy)."""
    settings = ctx.settings
    with ctx.session_factory() as session:
        # Its own job row is judged by the report's age instead (see read_watchdog_report).
        report = check_watchdog(session, now=now, poll_interval=settings.worker_poll_interval,
                                ignore_jobs=(WATCHDOG_JOB,))
        session.rollback()  # read-only: end the transaction before any outside call
    if report.healthy and settings.watchdog_ping_url:
        report.ping = ping_outside(settings.watchdog_ping_url,
                                   timeout=min(PING_TIMEOUT_SECONDS, settings.provider_timeout_seconds),
                                   secrets=settings.secret_values())
    with ctx.session_factory() as session:
        store_watchdog_report(session, report)
        session.commit()
    if not report.healthy:
        log.warning("watchdog found problems", extra=log_fields(problems=report.problems))
    return len(report.problems)
