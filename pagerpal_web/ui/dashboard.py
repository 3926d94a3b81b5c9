"""/dashboard: open incidents at a glance."""

from flask import render_template
from sqlalchemy import func, select

from pagerpal_core.models import Incident
from pagerpal_core.models.incidents import OPEN_STATUSES
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp


@bp.get("/dashboard")
@login_required_role("viewer")
def dashboard():
    """Open incidents, newest first, with counts by status."""
    incidents = db.session.scalars(select(Incident).where(Incident.status.in_(OPEN_STATUSES))
                                   .order_by(Incident.created_at.desc()).limit(100)).all()
    counts = dict(db.session.execute(select(Incident.status, func.count()).group_by(Incident.status)).all())
    return render_template("dashboard.html", incidents=incidents, counts=counts)
