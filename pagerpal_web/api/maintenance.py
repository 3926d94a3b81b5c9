"""/api/v1/maintenance-windows: list, read, create, end early, delete.

During a window the covered alert sources and policies still open incidents, but nobody is
paged until it ends (pagerpal_core/services/maintenance.py).
"""

from __future__ import annotations

from flask import jsonify

from pagerpal_core.models.maintenance import MaintenanceWindow
from pagerpal_core.services import maintenance as svc
from pagerpal_core.timeutil import utcnow
from pagerpal_web.api import bp
from pagerpal_web.api.common import body_fields, check_types, created, current_api_user, no_content, ts
from pagerpal_web.extensions import db

FIELDS = set(svc.FIELDS)
TYPES = {"starts_at": "string", "ends_at": "string", "reason": "string", "alert_source_ids": "array?",
         "policy_ids": "array?"}


def serialize_window(window: MaintenanceWindow, now=None) -> dict:
    """A window as the API shows it; `state` is scheduled, active or over at `now`."""
    return {"id": window.id, "reason": window.reason, "starts_at": ts(window.starts_at),
            "ends_at": ts(window.ends_at), "ended_at": ts(window.ended_at), "state": window.state(now or utcnow()),
            "alert_source_ids": [s.id for s in window.sources], "policy_ids": [p.id for p in window.policies],
            "created_by_id": window.created_by_id, "created_at": ts(window.created_at)}


@bp.get("/maintenance-windows")
def list_maintenance_windows():
    """Every window (the 200 latest by start), newest first, with its state now."""
    now = utcnow()
    return jsonify(items=[serialize_window(w, now) for w in svc.list_windows(db.session, now=now)])


@bp.post("/maintenance-windows")
def create_maintenance_window():
    """Create a window over alert sources and/or policies: alerts are recorded, nobody is paged."""
    data = body_fields(FIELDS, needed=("starts_at", "ends_at", "reason"))
    check_types(data, **TYPES)
    window = svc.create_window(db.session, **data, actor=current_api_user(), now=utcnow())
    db.session.commit()
    return created(serialize_window(window), "api.read_maintenance_window", window_id=window.id)


@bp.get("/maintenance-windows/<int:window_id>")
def read_maintenance_window(window_id: int):
    """One window."""
    return jsonify(serialize_window(svc.get_window(db.session, window_id)))


@bp.post("/maintenance-windows/<int:window_id>/end")
def end_maintenance_window(window_id: int):
    """End a window now (or cancel one not yet begun); held incidents page at the worker's next cycle."""
    window = svc.end_window(db.session, svc.get_window(db.session, window_id), actor=current_api_user(),
                            now=utcnow())
    db.session.commit()
    return jsonify(serialize_window(window))


@bp.delete("/maintenance-windows/<int:window_id>")
def delete_maintenance_window(window_id: int):
    """Delete a window; incidents it held page at the worker's next cycle."""
    svc.delete_window(db.session, svc.get_window(db.session, window_id), actor=current_api_user(), now=utcnow())
    db.session.commit()
    return no_content()
