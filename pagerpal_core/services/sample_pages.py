"""Sample pages (`send-test-notification`): one outbox row with no incident, sent by the worker like a real page."""

from __future__ import annotations

from datetime import datetime

from pagerpal_core.errors import Invalid
from pagerpal_core.models import Notification
from pagerpal_core.services.users import validate_contact
from pagerpal_core.wakeup import notify_new_work

TEST_SUBJECT = "[TEST] PagerPal test notification"


def sample_page_body(channel: str, base_url: str) -> str:
    """The text of a test page: says what it is and where it came from."""
    if channel == "email":
        return (f"{TEST_SUBJECT}\n\nThis is a test notification from PagerPal at {base_url}.\n"
                "If you received it, email delivery works. No action is needed.\n")
    return f"{TEST_SUBJECT}: {channel} delivery from PagerPal works. No action needed. {base_url}"


def queue_test_notification(session, *, channel: str, destination: str, base_url: str,
                            now: datetime, actor: str | None = None) -> Notification:
    """Queue one test page (incident_id NULL) for the worker; flushes, the caller commits.

    Raises Invalid when the channel or destination is unusable. In safe mode the worker
    records it as suppressed like any other page. `actor` is accepted for symmetry with other
    services; a test page has no incident, so there is no timeline to write it on.
    """
    problem = validate_contact(channel, destination)
    if problem:
        field = "channel" if channel not in ("sms", "whatsapp", "email") else "destination"
        raise Invalid(f"cannot send a test notification: {field} {problem}", fields={field: problem})
    notification = Notification(
        incident_id=None, user_id=None, channel=channel, destination=destination.strip(),
        dedup_key=None, subject=TEST_SUBJECT, body=sample_page_body(channel, base_url),
        status="pending", attempts=0, next_attempt_at=now, created_at=now, updated_at=now)
    session.add(notification)
    session.flush()
    notify_new_work(session)
    return notification
