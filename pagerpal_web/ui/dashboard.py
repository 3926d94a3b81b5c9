"""/dashboard: open incidents at a glance, with the warnings that mean paging may not work."""

from flask import render_template
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from pagerpal_core.models import Incident
from pagerpal_core.models.incidents import OPEN_STATUSES, SEVERITIES
from pagerpal_core.services.provider_health import provider_health, sending_mode
from pagerpal_core.services.system import list_job_health
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import settings

DASHBOARD_LIMIT = 200
REFRESH_SECONDS = 5


def system_warnings(now) -> list[dict]:
    """Configuration and worker problems, most serious first: {"level", "text", "link"}."""
    config = settings()
    warnings = []
    jobs = list_job_health(db.session, now=now)
    if not jobs:
        warnings.append({"level": "bad", "text": "No worker has reported yet: nothing is sent or escalated "
                         "until pagerpal-worker runs.", "link": "ui.settings_page"})
    for health in jobs:
        if health.stale:
            beat = health.job.last_started_at
            last = beat.strftime("%H:%M:%S UTC") if beat else "never"
            warnings.append({"level": "bad", "text": f"Worker job {health.job.name} is stale (last run {last}).",
                             "link": "ui.settings_page"})
    if sending_mode(config) == "safe":
        warnings.append({"level": "warn", "text": "Sending is disabled (safe mode): pages are recorded as "
                         "suppressed and nobody is called.", "link": "ui.settings_page"})
    else:
        for channel in provider_health(config):
            if not channel.configured:
                warnings.append({"level": "bad", "text": f"{channel.channel} is not configured (missing "
                                 f"{', '.join(channel.missing)}); pages on it fail.", "link": "ui.settings_page"})
    return warnings


@bp.get("/dashboard")
@login_required_role("viewer")
def dashboard():
    """Triggered and acknowledged incidents (triggered first, then by severity and age), counts, warnings."""
    now = utcnow()
    severity_rank = {s: i for i, s in enumerate(SEVERITIES)}
    incidents = db.session.scalars(
        select(Incident).where(Incident.status.in_(OPEN_STATUSES))
        .options(selectinload(Incident.alert_source), selectinload(Incident.assignee))
        .order_by(Incident.created_at.desc()).limit(DASHBOARD_LIMIT)).all()
    incidents = sorted(incidents, key=lambda i: (i.status != "triggered", severity_rank.get(i.severity, 9),
                                                 -i.created_at.timestamp()))
    counts = dict(db.session.execute(select(Incident.status, func.count()).where(
        Incident.status.in_(OPEN_STATUSES)).group_by(Incident.status)).all())
    unrouted = db.session.scalar(select(func.count(Incident.id)).where(
        Incident.status.in_(OPEN_STATUSES), Incident.unrouted.is_(True)))
    return render_template("dashboard.html", incidents=incidents, counts=counts, unrouted=unrouted,
                           warnings=system_warnings(now), now=now, refresh_seconds=REFRESH_SECONDS,
                           limit=DASHBOARD_LIMIT)
