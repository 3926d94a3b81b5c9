"""/api/v1/heartbeats: heartbeat monitors (dead-man's switches) — list, read, create, update, delete.

The ping itself, `POST|GET /api/v1/heartbeats/<token>/ping`, needs no account and lives with the
other token-authenticated endpoints in `pagerpal_web/webhooks/heartbeat_pings.py`.
The token and ping URL are in the create response only; afterwards only a masked token is shown.
"""

from __future__ import annotations

from flask import jsonify, url_for

from pagerpal_core.models import HeartbeatMonitor
from pagerpal_core.services import heartbeats as svc
from pagerpal_core.timeutil import utcnow
from pagerpal_web.api import bp
from pagerpal_web.api.common import body_fields, check_types, created, no_content, settings, ts
from pagerpal_web.extensions import db

FIELDS = set(svc.FIELDS)
TYPES = {"name": "string", "interval_seconds": "integer", "grace_seconds": "integer",
         "escalation_policy_id": "integer"}


def serialize_heartbeat(monitor: HeartbeatMonitor) -> dict:
    """A heartbeat monitor as JSON, its ping token masked."""
    return {"id": monitor.id, "name": monitor.name, "interval_seconds": monitor.interval_seconds,
            "grace_seconds": monitor.grace_seconds, "escalation_policy_id": monitor.policy_id,
            "state": monitor.state, "masked_token": svc.mask_token(monitor),
            "last_ping_at": ts(monitor.last_ping_at), "expected_by": ts(monitor.expected_by),
            "down_since": ts(monitor.down_since), "ping_count": monitor.ping_count,
            "incident_id": monitor.incident_id, "created_at": ts(monitor.created_at),
            "updated_at": ts(monitor.updated_at)}


def ping_url(token: str) -> str:
    """The full ping URL for `token` under PAGERPAL_BASE_URL."""
    return settings().base_url + url_for("webhooks.heartbeat_ping", token=token)


@bp.get("/heartbeats")
def list_heartbeats():
    """Every heartbeat monitor, by name, with its state and last ping."""
    return jsonify(items=[serialize_heartbeat(m) for m in svc.list_heartbeats(db.session)])


@bp.post("/heartbeats")
def create_heartbeat():
    """Create a monitor; the response's `token` and `ping_url` are shown this once."""
    data = body_fields(FIELDS, needed=("name", "interval_seconds", "escalation_policy_id"))
    check_types(data, **TYPES)
    issued = svc.create_heartbeat(db.session, **data, now=utcnow())
    db.session.commit()
    body = serialize_heartbeat(issued.monitor) | {"token": issued.token, "ping_url": ping_url(issued.token)}
    return created(body, "api.read_heartbeat", heartbeat_id=issued.monitor.id)


@bp.get("/heartbeats/<int:heartbeat_id>")
def read_heartbeat(heartbeat_id: int):
    """One monitor."""
    return jsonify(serialize_heartbeat(svc.get_heartbeat(db.session, heartbeat_id)))


@bp.patch("/heartbeats/<int:heartbeat_id>")
def update_heartbeat(heartbeat_id: int):
    """Change name, interval, grace or escalation policy."""
    data = body_fields(FIELDS)
    check_types(data, **TYPES)
    monitor = svc.update_heartbeat(db.session, svc.get_heartbeat(db.session, heartbeat_id), now=utcnow(), **data)
    db.session.commit()
    return jsonify(serialize_heartbeat(monitor))


@bp.delete("/heartbeats/<int:heartbeat_id>")
def delete_heartbeat(heartbeat_id: int):
    """Delete a monitor (an incident it opened stays)."""
    svc.delete_heartbeat(db.session, svc.get_heartbeat(db.session, heartbeat_id))
    db.session.commit()
    return no_content()
