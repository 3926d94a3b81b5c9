"""`POST|GET /api/v1/heartbeats/<token>/ping`: a heartbeat monitor's ping, authenticated by its token alone.

Order of checks: the token is looked up by its SHA-256 (unknown → 404, nothing written) → the
monitor's ping bucket (429 with Retry-After, nothing written) → the ping is recorded, resolving
the monitor's open incident if it was missed → commit → 200. GET works too, because cron
one-liners call `curl URL` without `-X POST`; a body, if any, is not read. The access log
masks the token (requestlog).
"""

from __future__ import annotations

from flask import jsonify

from pagerpal_core.services.heartbeats import ping_heartbeat
from pagerpal_core.timeutil import isoformat, utcnow
from pagerpal_web.extensions import db
from pagerpal_web.webhooks import bp


@bp.route("/heartbeats/<token>/ping", methods=["GET", "POST"])
def heartbeat_ping(token: str):
    """Record one ping; answers with the monitor's name, state and next deadline."""
    result = ping_heartbeat(db.session, token, now=utcnow())
    db.session.commit()
    monitor = result.monitor
    return jsonify(status="ok", heartbeat=monitor.name, state=monitor.state,
                   expected_by=isoformat(monitor.expected_by), resolved_incident_id=result.resolved_incident_id)
