"""Who gets paged, by which channel: outbox rows written in the incident's transaction.

Paging a user writes one `Notification` row (status `pending`) per enabled contact method,
with the message already rendered, so the worker only has to send it. Each row's
`dedup_key` names the incident, the paging pass (`page_generation`), the escalation round
and level, the user, the channel and the contact method; the column is unique, so two
writers of the same page (say two escalation steps racing) cannot both queue it — the
second insert fails inside a savepoint and is counted as already queued.

Each page also gets its own signed action link (`/a/<token>`, services/action_links.py),
stored in the same savepoint as its row, and SMS/WhatsApp pages end with the recipient's
reply code for the incident (services/replies.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagerpal_core.messages import render_page
from pagerpal_core.models import ContactMethod, Incident, Notification, User
from pagerpal_core.services import action_links, replies
from pagerpal_core.wakeup import notify_new_work

log = logging.getLogger(__name__)


@dataclass
class PageResult:
    """What paging one user did: the rows this call queued and the channels they cover."""

    user: User
    notification_ids: list[int] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    already_queued: int = 0

    @property
    def reached(self) -> bool:
        """True when at least one page for this user exists (new or queued earlier)."""
        return bool(self.notification_ids) or self.already_queued > 0


def dedup_key(incident: Incident, level: int, user_id: int, channel: str, contact_method_id: int) -> str:
    """The unique key of one page: same incident, pass, round, level, user and channel → same key."""
    return (f"inc{incident.id}:g{incident.page_generation}:r{incident.escalation_round}:l{level}"
            f":u{user_id}:{channel}:c{contact_method_id}")


def page_user(session: Session, incident: Incident, user: User, *, level: int, now: datetime,
              base_url: str) -> PageResult:
    """Queue one page per enabled contact method of `user` (inactive users get none).

    The caller wakes the worker (`notify_new_work`) once it has paged everyone; this
    function only writes rows.
    """
    result = PageResult(user=user)
    if not user.active:
        return result
    methods = list(session.scalars(select(ContactMethod).where(
        ContactMethod.user_id == user.id, ContactMethod.enabled.is_(True)).order_by(ContactMethod.id)))
    source_name = incident.alert_source.name if incident.alert_source is not None else None
    # Pages carry a signed action link and, on phones, a reply code — except to viewers,
    # who may not act on incidents (and without signing material: plain incident links).
    signing = action_links.signing_for(session) if user.role != "viewer" else None
    reply_code = None
    if signing is not None and any(m.channel in replies.PHONE_CHANNELS for m in methods):
        reply_code = replies.assign_reply_code(session, incident, user, now=now)
    for method in methods:
        token = action_links.new_token() if signing is not None else None
        message = render_page(incident, method.channel, base_url=base_url, source_name=source_name,
                              action_token=token,
                              reply_code=reply_code if method.channel in replies.PHONE_CHANNELS else None)
        row = Notification(
            incident_id=incident.id, user_id=user.id, channel=method.channel, destination=method.destination,
            dedup_key=dedup_key(incident, level, user.id, method.channel, method.id),
            escalation_level=level, subject=message.subject, body=message.body, status="pending",
            attempts=0, next_attempt_at=now, created_at=now, updated_at=now)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
                if token is not None:
                    # Stored with its page: a page that is not queued leaves no link behind.
                    action_links.create_action_link(session, token=token, signing=signing, incident=incident,
                                                    user=user, channel=method.channel, now=now, notification=row)
        except IntegrityError:
            # Someone else queued exactly this page: it exists once, which is the point.
            result.already_queued += 1
            continue
        result.notification_ids.append(row.id)
        result.channels.append(method.channel)
    return result


def page_users(session: Session, incident: Incident, users: list[User], *, level: int, now: datetime,
               base_url: str) -> list[PageResult]:
    """Page each of `users` for `level`, then wake the worker if anything new was queued."""
    results = [page_user(session, incident, user, level=level, now=now, base_url=base_url) for user in users]
    if any(r.notification_ids for r in results):
        notify_new_work(session)
    return results


def cancel_pending_pages(session: Session, incident: Incident, *, now: datetime) -> int:
    """Mark the incident's not-yet-sent (`pending`) pages `cancelled`; returns how many.

    Rows a worker has already claimed (`sending`) are left to finish: the send is under way.
    """
    result = session.execute(
        update(Notification)
        .where(Notification.incident_id == incident.id, Notification.status == "pending")
        .values(status="cancelled", updated_at=now, next_attempt_at=None)
        .execution_options(synchronize_session=False))
    session.flush()
    return result.rowcount or 0
