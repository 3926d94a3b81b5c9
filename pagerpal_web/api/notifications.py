"""/api/v1/notifications: the delivery log, and a hand retry for a page that failed."""

from functools import partial

from flask import jsonify, request

from pagerpal_core.errors import Invalid
from pagerpal_core.models import Notification
from pagerpal_core.security import destination_for
from pagerpal_core.services import notifications as svc
from pagerpal_core.timeutil import utcnow
from pagerpal_web.api import bp
from pagerpal_web.api.common import current_api_user, paginate, ts
from pagerpal_web.auth import requires_role
from pagerpal_web.extensions import db


def serialize_notification(n: Notification) -> dict:
    """A notification as JSON; its destination masked for viewers."""
    return {
        "id": n.id, "incident_id": n.incident_id, "user_id": n.user_id, "channel": n.channel,
        "destination": destination_for(current_api_user().role, n.destination),
        "escalation_level": n.escalation_level, "subject": n.subject,
        "status": n.status, "attempts": n.attempts, "next_attempt_at": ts(n.next_attempt_at),
        "provider_message_id": n.provider_message_id, "provider_status": n.provider_status,
        "last_error": n.last_error, "created_at": ts(n.created_at), "updated_at": ts(n.updated_at),
        "sent_at": ts(n.sent_at), "delivered_at": ts(n.delivered_at),
    }


@bp.get("/notifications")
def list_notifications():
    """Notifications by id, optionally filtered by `status` and `incident`; paginated."""
    incident = request.args.get("incident")
    if incident is not None and (not incident.isdigit() or len(incident) > 18):
        raise Invalid("invalid filter", fields={"incident": "must be an incident id"})
    fetch = partial(svc.list_notifications, db.session, status=request.args.get("status"),
                    incident_id=int(incident) if incident is not None else None)
    return jsonify(paginate(fetch, "api.list_notifications", serialize_notification))


@bp.get("/notifications/<int:notification_id>")
def read_notification(notification_id: int):
    """One notification with its delivery state."""
    return jsonify(serialize_notification(svc.get_notification(db.session, notification_id)))


@bp.post("/notifications/<int:notification_id>/retry")
@requires_role("responder")
def retry_notification_view(notification_id: int):
    """Send a failed, exhausted or undeliverable page again (409 for any other status)."""
    notification = svc.get_notification(db.session, notification_id)
    notification = svc.retry_notification(db.session, notification, actor=current_api_user(), now=utcnow())
    db.session.commit()
    return jsonify(serialize_notification(notification))
