"""/api/v1/notifications: the delivery log, and a hand retry for a page that failed."""

from flask import jsonify, request
from sqlalchemy import select

from pagerpal_core.errors import Invalid, NotFound
from pagerpal_core.models import Notification
from pagerpal_core.models.notifications import NOTIFICATION_STATUSES
from pagerpal_core.security import destination_for
from pagerpal_core.services.notifications import retry_notification
from pagerpal_core.timeutil import utcnow
from pagerpal_web.api import bp
from pagerpal_web.api.common import current_api_user, paginate, ts
from pagerpal_web.auth import requires_role
from pagerpal_web.extensions import db


def serialize_notification(n: Notification) -> dict:
    return {
        "id": n.id, "incident_id": n.incident_id, "user_id": n.user_id, "channel": n.channel,
        "destination": destination_for(current_api_user().role, n.destination),
        "escalation_level": n.escalation_level, "subject": n.subject,
        "status": n.status, "attempts": n.attempts, "next_attempt_at": ts(n.next_attempt_at),
        "provider_message_id": n.provider_message_id, "provider_status": n.provider_status,
        "last_error": n.last_error, "created_at": ts(n.created_at), "updated_at": ts(n.updated_at),
        "sent_at": ts(n.sent_at), "delivered_at": ts(n.delivered_at),
    }


def get_notification(notification_id: int) -> Notification:
    notification = db.session.get(Notification, notification_id)
    if notification is None:
        raise NotFound(f"notification {notification_id} not found")
    return notification


@bp.get("/notifications")
def list_notifications():
    """Notifications by id, optionally filtered by `status` and `incident`; paginated."""
    query = select(Notification)
    status, incident = request.args.get("status"), request.args.get("incident")
    if status is not None:
        if status not in NOTIFICATION_STATUSES:
            raise Invalid("invalid filter",
                          fields={"status": f"must be one of {', '.join(NOTIFICATION_STATUSES)}"})
        query = query.where(Notification.status == status)
    if incident is not None:
        if not incident.isdigit() or len(incident) > 18:
            raise Invalid("invalid filter", fields={"incident": "must be an incident id"})
        query = query.where(Notification.incident_id == int(incident))
    return jsonify(paginate(db.session, query, Notification.id, "api.list_notifications",
                            serialize_notification))


@bp.get("/notifications/<int:notification_id>")
def read_notification(notification_id: int):
    """One notification with its delivery state."""
    return jsonify(serialize_notification(get_notification(notification_id)))


@bp.post("/notifications/<int:notification_id>/retry")
@requires_role("responder")
def retry_notification_view(notification_id: int):
    """Send a failed, exhausted or undeliverable page again (409 for any other status)."""
    notification = retry_notification(db.session, get_notification(notification_id), actor=current_api_user(),
                                      now=utcnow())
    db.session.commit()
    return jsonify(serialize_notification(notification))
