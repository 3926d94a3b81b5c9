"""Who gets paged, by which channel: outbox rows written in the incident's transaction.

Paging a user writes one `Notification` row (status `pending`) per personal notification
rule (services/notification_rules.py; by default every enabled contact method at once), due
at `now + delay`, with the message already rendered, so the worker only has to send it. Each row's
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
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagerpal_core.messages import render_page
from pagerpal_core.models import ContactMethod, Incident, Notification, User
from pagerpal_core.services import action_links, replies
from pagerpal_core.services.notification_rules import effective_rules
from pagerpal_core.services.webhooks import render_webhook
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


def round_key(incident: Incident, level: int, user_id: int) -> str:
    """The page round a user's pages belong to: incident, pass, escalation round, level, user."""
    return f"inc{incident.id}:g{incident.page_generation}:r{incident.escalation_round}:l{level}:u{user_id}"


def dedup_key(incident: Incident, level: int, user_id: int, channel: str, contact_method_id: int) -> str:
    """The unique key of one page: same incident, pass, round, level, user and channel → same key."""
    return f"{round_key(incident, level, user_id)}:{channel}:c{contact_method_id}"


@dataclass
class PageSigning:
    """What every page of one user for one incident shares: link signing and the reply code."""

    signing: object | None
    reply_code: str | None


def page_signing(session: Session, incident: Incident, user: User, channels, *, now: datetime) -> PageSigning:
    """Signing material for `user`'s pages of `incident` (reply code only when a phone channel is paged)."""
    # Pages carry a signed action link and, on phones, a reply code — except to viewers,
    # who may not act on incidents (and without signing material: plain incident links).
    signing = action_links.signing_for(session) if user.role != "viewer" else None
    reply_code = None
    if signing is not None and any(c in replies.PHONE_CHANNELS for c in channels):
        reply_code = replies.assign_reply_code(session, incident, user, now=now)
    return PageSigning(signing, reply_code)


def queue_page(session: Session, incident: Incident, user: User, method: ContactMethod, *, level: int,
               now: datetime, due_at: datetime, base_url: str, signing: PageSigning,
               key_round: str | None = None) -> Notification | None:
    """Write one page of `incident` to `user` by `method`, due at `due_at`; None if it exists already.

    The one place a page row is written (rules, failover): its action link is stored in the
    same savepoint, so a page that is not queued leaves no link behind.
    """
    source_name = incident.alert_source.name if incident.alert_source is not None else None
    token = action_links.new_token() if signing.signing is not None else None
    if method.channel == "webhook":
        # A chat channel gets the incident as JSON; no personal action link goes to a shared room.
        token = None
        message = render_webhook(incident, base_url=base_url, fmt=method.webhook_format, source_name=source_name)
    else:
        message = render_page(incident, method.channel, base_url=base_url, source_name=source_name,
                              action_token=token,
                              reply_code=signing.reply_code if method.channel in replies.PHONE_CHANNELS else None)
    key_round = key_round or round_key(incident, level, user.id)
    row = Notification(
        incident_id=incident.id, user_id=user.id, channel=method.channel, destination=method.destination,
        dedup_key=f"{key_round}:{method.channel}:c{method.id}", round_key=key_round,
        contact_method_id=method.id, escalation_level=level, subject=message.subject, body=message.body,
        status="pending", attempts=0, next_attempt_at=due_at, created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
            if token is not None:
                action_links.create_action_link(session, token=token, signing=signing.signing, incident=incident,
                                                user=user, channel=method.channel, now=now, notification=row)
    except IntegrityError:
        # Someone else queued exactly this page: it exists once, which is the point.
        return None
    return row


def page_user(session: Session, incident: Incident, user: User, *, level: int, now: datetime,
              base_url: str) -> PageResult:
    """Queue one page per notification rule of `user`, due at `now + delay` (inactive users get none).

    The caller wakes the worker (`notify_new_work`) once it has paged everyone; this
    function only writes rows.
    """
    result = PageResult(user=user)
    if not user.active:
        return result
    rules = effective_rules(session, user)
    signing = page_signing(session, incident, user, [r.contact_method.channel for r in rules], now=now)
    for rule in rules:
        row = queue_page(session, incident, user, rule.contact_method, level=level, now=now,
                         due_at=now + timedelta(minutes=rule.delay_minutes), base_url=base_url, signing=signing)
        if row is None:
            result.already_queued += 1
            continue
        result.notification_ids.append(row.id)
        result.channels.append(rule.contact_method.channel)
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
