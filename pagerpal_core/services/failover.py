"""Failover: a page that cannot reach its person pages their next contact method at once.

A page of a triggered incident fails over when it ends `undeliverable` (a receipt), `failed`
or `exhausted` (a permanent error, or retries out of time), or — SMS and WhatsApp only, and
only when receipts are configured — when no delivered receipt came within
DELIVERY_CONFIRM_SECONDS of sending. The user's next contact method not yet tried in the
same page round (incident, paging pass, escalation round, level, user; `round_key`) is paged
now, ahead of its rule delay: a pending rule row for it is brought forward, or a new page row
is written through paging.queue_page (the one writer of page rows, action link included).

Each failed page fails over once: `failed_over_at` is set by a conditional UPDATE, so two
sweeps (two workers) racing on one row cannot both page the next method. Every step is one
timeline line: "SMS to +1•••0101 undeliverable (EC_ABSENT_SUBSCRIBER) → email to a•••@acme.test".

The worker's dispatch step calls `fail_over_due` before it claims, so the next page goes out
in the same cycle.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import and_, select, text, update
from sqlalchemy.orm import Session

from pagerpal_core.models import Incident, Notification, User
from pagerpal_core.models.notifications import FAILOVER_DUE, UNCONFIRMED
from pagerpal_core.security import mask_destination
from pagerpal_core.services.notification_rules import failover_order
from pagerpal_core.services.paging import page_signing, queue_page
from pagerpal_core.services.timeline import record_event
from pagerpal_core.wakeup import notify_new_work

CHANNEL_LABELS = {"sms": "SMS", "whatsapp": "WhatsApp", "email": "email", "webhook": "webhook"}
# Statuses that mean "this contact method was tried in this round".
TRIED = ("sending", "sent", "delivered", "undeliverable", "failed", "exhausted", "suppressed", "bundled")


def channel_label(channel: str) -> str:
    """How a channel is named in a timeline line."""
    return CHANNEL_LABELS.get(channel, channel)


def describe_page(notification: Notification) -> str:
    """`SMS to +1•••0101`."""
    return f"{channel_label(notification.channel)} to {mask_destination(notification.destination)}"


def failure_reason(notification: Notification, *, unconfirmed_seconds: float | None = None) -> str:
    """Why a page counts as failed, short: `undeliverable (EC_ABSENT_SUBSCRIBER)`."""
    if unconfirmed_seconds is not None:
        return f"not confirmed delivered after {unconfirmed_seconds:g}s"
    error = notification.last_error or ""
    if notification.status == "undeliverable":
        # The receipt's error name (EC_ABSENT_SUBSCRIBER) says most; else its status name.
        match = re.search(r"error ([A-Z0-9_]+)", error)
        why = match.group(1) if match else (notification.provider_status or "no reason given")
        return f"undeliverable ({why})"
    if "lease expired" in error:
        return "failed (send interrupted, retries ran out)"
    return f"failed ({error[:80] or notification.status})"


def _round_of(notification: Notification) -> str | None:
    if notification.round_key:
        return notification.round_key
    # Pages written before rounds were stored: the dedup key without its channel part.
    key = notification.dedup_key or ""
    return key.rsplit(":", 2)[0] if key.startswith("inc") and key.count(":") >= 6 else None


def fail_over(session: Session, notification: Notification, *, now: datetime, base_url: str,
              reason: str) -> Notification | None:
    """Page the user's next untried contact method for `notification`'s round; returns that page.

    Does nothing (returns None) when this row already failed over, is not an incident page,
    or its incident is no longer triggered (someone acknowledged: nobody needs paging). Writes
    one timeline line either way once the incident is still being paged. Flushes only.
    """
    claimed = session.execute(
        update(Notification).where(Notification.id == notification.id, Notification.failed_over_at.is_(None))
        .values(failed_over_at=now).execution_options(synchronize_session=False)).rowcount
    if not claimed:
        return None
    notification.failed_over_at = now
    if notification.kind != "page" or notification.incident_id is None or notification.user_id is None:
        return None
    incident = session.get(Incident, notification.incident_id)
    user = session.get(User, notification.user_id)
    key_round = _round_of(notification)
    if incident is None or user is None or incident.status != "triggered" or key_round is None:
        return None
    rows = list(session.scalars(select(Notification).where(Notification.round_key == key_round,
                                                           Notification.kind == "page")))
    tried = {r.contact_method_id for r in rows if r.status in TRIED} | {notification.contact_method_id}
    tried_places = {(r.channel, r.destination) for r in rows if r.status in TRIED}
    tried_places.add((notification.channel, notification.destination))
    candidates = [m for m in failover_order(session, user)
                  if m.id not in tried and (m.channel, m.destination) not in tried_places]
    head = f"{describe_page(notification)} {reason}"
    detail = {"notification_id": notification.id, "round": key_round, "error": notification.last_error}
    if not candidates or not user.active:
        record_event(session, incident, "notification_failover", f"{head} → no other contact method to try",
                     detail={**detail, "next_notification_id": None}, now=now)
        return None
    method = candidates[0]
    pending = next((r for r in rows if r.contact_method_id == method.id and r.status == "pending"), None)
    if pending is not None:
        # A later rule for this method is waiting: bring it forward instead of paging twice.
        if pending.next_attempt_at is None or pending.next_attempt_at > now:
            pending.next_attempt_at = now
            pending.updated_at = now
        page = pending
    else:
        signing = page_signing(session, incident, user, [method.channel], now=now)
        page = queue_page(session, incident, user, method, level=notification.escalation_level or 0, now=now,
                          due_at=now, base_url=base_url, signing=signing, key_round=key_round)
    if page is None:
        record_event(session, incident, "notification_failover", f"{head} → no other contact method to try",
                     detail={**detail, "next_notification_id": None}, now=now)
        return None
    record_event(session, incident, "notification_failover",
                 f"{head} → {channel_label(method.channel)} to {mask_destination(method.destination)}",
                 detail={**detail, "next_notification_id": page.id, "next_channel": method.channel}, now=now)
    session.flush()
    notify_new_work(session)
    return page


def _ids(session: Session, predicate, *, limit: int) -> list[int]:
    # SKIP LOCKED: a second worker's sweep takes other rows instead of waiting on these.
    return list(session.scalars(select(Notification.id).where(predicate).order_by(Notification.id)
                                .limit(limit).with_for_update(skip_locked=True)))


def fail_over_due(session: Session, *, now: datetime, base_url: str, confirm_seconds: float | None,
                  limit: int = 100) -> int:
    """Fail over every page that ended failed, and (when `confirm_seconds` is given) every sent
    SMS/WhatsApp page without a delivered receipt after that long. Returns how many rows it handled.

    Flushes; the caller commits.
    """
    handled = 0
    for notification_id in _ids(session, text(FAILOVER_DUE), limit=limit):
        notification = session.get(Notification, notification_id)
        fail_over(session, notification, now=now, base_url=base_url, reason=failure_reason(notification))
        handled += 1
    if confirm_seconds:
        late = and_(text(UNCONFIRMED), Notification.sent_at <= now - timedelta(seconds=confirm_seconds))
        for notification_id in _ids(session, late, limit=limit):
            notification = session.get(Notification, notification_id)
            fail_over(session, notification, now=now, base_url=base_url,
                      reason=failure_reason(notification, unconfirmed_seconds=confirm_seconds))
            handled += 1
    return handled
