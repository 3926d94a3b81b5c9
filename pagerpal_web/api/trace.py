"""GET /api/v1/incidents/<id>/trace: why the incident was (or was not) paged, step by step.

Read-only, so any role may read it (viewers included). The structure is the core's
`trace_incident` (pagerpal_core/services/trace.py); the incident page shows the same steps
as sentences.
"""

from __future__ import annotations

from flask import jsonify

from pagerpal_core.services.trace import trace_incident
from pagerpal_web.api import bp
from pagerpal_web.api.incidents import get_incident
from pagerpal_web.extensions import db


@bp.get("/incidents/<int:incident_id>/trace")
def read_incident_trace(incident_id: int):
    """The incident's paging story: source and policy, levels and people with reasons, notifications, stop."""
    return jsonify(trace_incident(db.session, get_incident(incident_id)).as_dict())
