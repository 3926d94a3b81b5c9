"""/api/v1/system: worker health and delivery channel readiness for any signed-in account."""

from flask import jsonify

from pagerpal_core.services.provider_health import provider_health_report
from pagerpal_core.services.system import list_job_health
from pagerpal_core.services.watchdog import read_watchdog_report
from pagerpal_core.timeutil import utcnow
from pagerpal_web.api import bp
from pagerpal_web.api.common import settings, ts
from pagerpal_web.extensions import db


def serialize_job(health) -> dict:
    """A worker job's health as JSON: schedule, leader, last run, last error, staleness."""
    job = health.job
    return {
        "name": job.name, "enabled": job.enabled, "stale": health.stale,
        "interval_seconds": job.interval_seconds,
        "leader": {"host": job.leader_host, "pid": job.leader_pid} if job.leader_host else None,
        "last_started_at": ts(job.last_started_at), "last_success_at": ts(job.last_success_at),
        "last_error": job.last_error, "last_error_at": ts(job.last_error_at),
        "run_count": job.run_count, "last_duration_ms": job.last_duration_ms,
        "standby_instances": sorted((job.standby_instances or {}).keys()),
    }


@bp.get("/system/jobs")
def system_jobs():
    """Each worker step's last run, leader and stale flag, which channels can send, and the watchdog's findings."""
    now = utcnow()
    jobs = list_job_health(db.session, now=now)
    watchdog = read_watchdog_report(db.session, now=now, poll_interval=settings().worker_poll_interval)
    return jsonify(items=[serialize_job(h) for h in jobs], providers=provider_health_report(settings()),
                   watchdog=watchdog.as_dict() if watchdog else None)
