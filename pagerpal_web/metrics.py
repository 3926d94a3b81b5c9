"""GET /metrics in the Prometheus text format, guarded by the METRICS setting.

METRICS=off (default) answers 404; `open` serves anyone; `token:<secret>` wants
`Authorization: Bearer <secret>`. Counters are summed across gunicorn workers (see
pagerpal_core.metrics); everything else is read from the database at scrape time.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from pagerpal_core.metrics import (
    COUNTER_REGISTRY,
    DatabaseFigures,
    count_alert,
    count_rate_limited,
    read_database_figures,
)
from pagerpal_core.security import constant_time_equals
from pagerpal_core.timeutil import utcnow
from pagerpal_web.config import settings
from pagerpal_web.extensions import db

bp = Blueprint("metrics", __name__)

ALERT_VIEWS_MODULE = "pagerpal_web.webhooks.alerts"
# What a refused alert request counts as (accepted ones are counted per event by the views).
REJECTION_RESULTS = {400: "invalid", 401: "unauthorized", 403: "forbidden", 413: "too_large",
                     415: "invalid", 422: "invalid", 429: "rate_limited"}


def multiprocess_mode() -> bool:
    """True when prometheus_client keeps values in PROMETHEUS_MULTIPROC_DIR files.

    Decided when prometheus_client was imported (the gunicorn config sets the variable
    before any worker imports the app), so ask it rather than the environment now.
    """
    return values.ValueClass is not values.MutexValue


def counter_source():
    """The collector for the event counters: every process's files, or this process's memory."""
    if multiprocess_mode():
        from prometheus_client import multiprocess
        return multiprocess.MultiProcessCollector(None)
    return COUNTER_REGISTRY


class DatabaseCollector:
    """Turns one `DatabaseFigures` read into metric families."""

    def __init__(self, figures: DatabaseFigures):
        self.figures = figures

    def collect(self):
        """Yield every database-derived family (prometheus_client's collector protocol)."""
        f = self.figures
        incidents = GaugeMetricFamily("pagerpal_incidents", "Incidents by status.", labels=["status"])
        for status, count in f.incidents.items():
            incidents.add_metric([status], count)
        yield incidents
        yield GaugeMetricFamily("pagerpal_incidents_paging_failed", "Triggered incidents whose every page in the "
                                "current round failed: nobody has been reached.", value=f.paging_failed)

        notifications = GaugeMetricFamily("pagerpal_notifications", "Notifications by channel and status.",
                                          labels=["channel", "status"])
        for (channel, status), count in sorted(f.notifications.items()):
            notifications.add_metric([channel, status], count)
        yield notifications

        latency = f.dispatch_latency
        histogram = HistogramMetricFamily(
            "pagerpal_notification_dispatch_latency_seconds",
            "Seconds from a notification being queued to the provider accepting it.")
        buckets = [(repr(float(bound)), count) for bound, count in latency.buckets.items()]
        histogram.add_metric([], buckets + [("+Inf", latency.total)], sum_value=latency.sum_seconds)
        yield histogram

        yield GaugeMetricFamily("pagerpal_notifications_due",
                                "Pending notifications whose send time has come.", value=f.notifications_due)
        yield GaugeMetricFamily("pagerpal_notifications_oldest_due_seconds",
                                "How long the oldest due notification has waited for the worker.",
                                value=f.oldest_due_seconds)

        lag = GaugeMetricFamily("pagerpal_worker_step_lag_seconds",
                                "Seconds since the worker last started this step.", labels=["step"])
        duration = GaugeMetricFamily("pagerpal_worker_step_duration_seconds",
                                     "Duration of the step's last run.", labels=["step"])
        runs = CounterMetricFamily("pagerpal_worker_step_runs",
                                   "Runs of the step, as the worker reports them.", labels=["step"])
        success = GaugeMetricFamily("pagerpal_worker_step_last_success_timestamp_seconds",
                                    "Unix time of the step's last successful run.", labels=["step"])
        enabled = GaugeMetricFamily("pagerpal_worker_step_enabled", "1 when the step is enabled.",
                                    labels=["step"])
        for step in f.worker_steps:
            if step.lag_seconds is not None:
                lag.add_metric([step.name], step.lag_seconds)
            if step.duration_seconds is not None:
                duration.add_metric([step.name], step.duration_seconds)
            runs.add_metric([step.name], step.runs)
            if step.last_success is not None:
                success.add_metric([step.name], step.last_success.timestamp())
            enabled.add_metric([step.name], 1 if step.enabled else 0)
        yield from (lag, duration, runs, success, enabled)
        yield GaugeMetricFamily("pagerpal_worker_standby_instances",
                                "Standby workers seen recently, waiting to take over.",
                                value=f.standby_workers)
        yield from watchdog_families(f.watchdog)


def watchdog_families(report):
    """The escalation watchdog's last report; nothing until its first run (absent, not zero)."""
    if report is None:
        return
    yield GaugeMetricFamily("pagerpal_watchdog_healthy", "1 when the last watchdog run found nothing and is "
                            "recent; 0 otherwise.", value=1 if report.healthy else 0)
    yield GaugeMetricFamily("pagerpal_watchdog_overdue_escalations", "Triggered incidents whose escalation is "
                            "overdue by more than two poll intervals.", value=report.overdue_escalations)
    yield GaugeMetricFamily("pagerpal_watchdog_stuck_notifications", "Notifications still sending past their "
                            "lease.", value=report.stuck_notifications)
    yield GaugeMetricFamily("pagerpal_watchdog_stale_jobs", "Worker steps whose heartbeat is older than "
                            "expected.", value=len(report.stale_jobs))
    yield GaugeMetricFamily("pagerpal_watchdog_last_check_timestamp_seconds", "Unix time of the last watchdog "
                            "run.", value=report.checked_at.timestamp())


def _refusal():
    """None when this scrape may proceed, else the response that refuses it."""
    mode = settings().metrics
    if mode == "off":
        return Response("metrics are disabled (METRICS=off)\n", status=404, mimetype="text/plain")
    if mode == "open":
        return None
    expected = mode.split(":", 1)[1]
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() == "bearer" and constant_time_equals(presented.strip(), expected):
        return None
    return Response("a bearer token is required for /metrics\n", status=401, mimetype="text/plain",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'})


@bp.get("/metrics")
def metrics():
    """The Prometheus exposition: counters summed over processes, figures read from the database."""
    refusal = _refusal()
    if refusal is not None:
        return refusal
    try:
        figures = read_database_figures(db.session, now=utcnow(), poll_interval=settings().worker_poll_interval)
    finally:
        db.session.rollback()  # read-only; end the transaction before rendering
    registry = CollectorRegistry(auto_describe=False)
    registry.register(counter_source())
    registry.register(DatabaseCollector(figures))
    return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


# --- counting refused requests ----------------------------------------------------------

def remember_alert_source(name: str) -> None:
    """Note which source an alert request authenticated as, for counting a later refusal."""
    g.pagerpal_alert_source = name


def _is_alert_request() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return view is not None and getattr(view, "__module__", "") == ALERT_VIEWS_MODULE


def init_app(app: Flask) -> None:
    """Count refusals where they are decided — the response — so no view needs to."""

    @app.after_request
    def count_refusals(response):
        status = response.status_code
        alert = _is_alert_request()
        if status == 429:
            count_rate_limited("alert_source" if alert else "sign_in")
        if alert and status >= 400:
            result = REJECTION_RESULTS.get(status, "error" if status >= 500 else "rejected")
            count_alert(g.get("pagerpal_alert_source"), result)
        return response
