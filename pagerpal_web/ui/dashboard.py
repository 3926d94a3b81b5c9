"""/dashboard and /mine: open incidents at a glance, with the warnings that mean paging may not work.

The ranking, counts and warnings come from core (`dashboard_summary`, `my_incidents`);
these views only render them.
"""

from flask import Response, make_response, render_template, request, session
from flask_login import current_user

from pagerpal_core.services.coverage import at_a_glance
from pagerpal_core.services.dashboard_version import dashboard_version
from pagerpal_core.services.incident_queries import dashboard_summary, my_incidents
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import settings

REFRESH_SECONDS = 5


@bp.get("/dashboard")
@login_required_role("viewer")
def dashboard():
    """Triggered and acknowledged incidents (triggered first, then by severity and age), counts, warnings.

    Answers 304 when the browser's copy is current (its ETag is core's dashboard_version), so
    the self-refresh every few seconds costs a few queries and no body while nothing changes.
    A pending flash message always gets a full page, or it would wait for the next change.
    """
    now = utcnow()
    version = dashboard_version(db.session, now=now, viewer=current_user._get_current_object())
    if "_flashes" not in session and request.if_none_match.contains(version):
        response = Response(status=304)
    else:
        response = make_response(_dashboard_page(now))
    response.set_etag(version)
    # Revalidate every time (no stale dashboards); private: it is one user's view.
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _dashboard_page(now) -> str:
    summary = dashboard_summary(db.session, settings(), now=now)
    return render_template("dashboard.html", summary=summary, incidents=summary.incidents, now=now,
                           paging_failed=summary.paging_failed,
                           glance=at_a_glance(db.session, now=now), refresh_seconds=REFRESH_SECONDS)


@bp.get("/mine")
@login_required_role("viewer")
def mine():
    """Open incidents assigned to me or paging me, triage order: a responder's landing page."""
    now = utcnow()
    incidents = my_incidents(db.session, current_user)
    return render_template("mine.html", incidents=incidents, now=now, refresh_seconds=REFRESH_SECONDS)
