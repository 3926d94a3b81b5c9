"""The notification outbox: claim due rows under a lease, record what the provider said.

The worker's dispatch is three short steps so no transaction is open while a provider is
called: `claim_due_notifications` (one statement marks rows `sending` with a lease, then the
caller commits), the send (no transaction), `record_send_outcome` (a new transaction).
A worker that dies mid-send leaves `sending` rows whose lease runs out;
`recover_expired_leases` puts them back to `pending` (at-least-once, never dropped).

Retries are bounded by time, not by count: a retryable failure is tried again with capped,
jittered backoff until NOTIFICATION_RETRY_WINDOW_SECONDS after the row's first attempt, or
until its incident is acknowledged or resolved. A 429 with Retry-After pauses the whole
provider (`provider_pauses`): no row for it is claimed before the pause ends. Due rows are
claimed oldest first, so a backlog drains in the order the pages were written. A page that
ends failed is picked up by `failover.fail_over_due` (the user's next contact method).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from pagerpal_core.db import Keyset, get_or_not_found
from pagerpal_core.errors import Conflict, Invalid
from pagerpal_core.models import Incident, Notification, ProviderPause, User
from pagerpal_core.models.notifications import NOTIFICATION_STATUSES, RETRYABLE_BY_HAND
from pagerpal_core.security import clip, mask_destination, redact
from pagerpal_core.services.provider_health import PROVIDERS
from pagerpal_core.services.timeline import record_event
from pagerpal_core.wakeup import notify_new_work

MAX_ERROR_LENGTH = 1000  # notifications.last_error is String(1000)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits between ½ and 1 × min(cap, base·2^(n-1)).

    Retries stop `window_seconds` after the first attempt; `max_attempts` (0 = none) is an
    optional count limit on top.
    """

    base_seconds: float = 10.0
    max_seconds: float = 600.0
    max_attempts: int = 0
    window_seconds: float = 900.0

    @classmethod
    def from_settings(cls, settings) -> RetryPolicy:
        """The policy the settings describe."""
        return cls(settings.notification_retry_base_seconds, settings.notification_retry_max_seconds,
                   settings.notification_max_attempts, settings.notification_retry_window_seconds)

    def deadline(self, first_attempt_at: datetime | None, now: datetime) -> datetime:
        """When retrying stops for a row first tried at `first_attempt_at`."""
        return (first_attempt_at or now) + timedelta(seconds=self.window_seconds)

    def out_of_attempts(self, attempts: int) -> bool:
        """True when the optional count limit is reached."""
        return bool(self.max_attempts) and attempts >= self.max_attempts

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the `attempts`-th failed attempt (attempts ≥ 1).

        "Equal jitter": half the delay is fixed so delays still grow attempt by attempt,
        half is random so many rows failing together do not retry in lockstep.
        """
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** max(0, attempts - 1)))
        return ceiling * (0.5 + 0.5 * (rng or random).random())


@dataclass(frozen=True)
class ClaimedNotification:
    """A row claimed for sending, copied out so the send needs no session."""

    id: int
    incident_id: int | None
    channel: str
    destination: str
    subject: str
    body: str
    attempts: int
    user_id: int | None = None


def clean_error(error: str | None, secrets: list[str] | tuple[str, ...] = ()) -> str | None:
    """A provider error made safe to store and show: secrets redacted, length clipped."""
    if not error:
        return None
    return clip(redact(str(error), secrets), MAX_ERROR_LENGTH)


def _due(now: datetime):
    # A page of an incident resolved meanwhile is never due, even before the cancel sweep
    # marks it: resolving must stop paging at once.
    resolved = select(Incident.id).where(Incident.id == Notification.incident_id,
                                         Incident.status == "resolved").exists()
    return (Notification.status == "pending") & (Notification.next_attempt_at <= now) & ~resolved


def paused_channels(session: Session, *, now: datetime) -> list[str]:
    """Channels whose provider asked us to wait (429 Retry-After) and whose pause has not ended."""
    providers = set(session.scalars(select(ProviderPause.provider).where(ProviderPause.paused_until > now)))
    return [channel for channel, provider in PROVIDERS.items() if provider in providers]


def pause_provider(session: Session, provider: str, *, until: datetime, reason: str, now: datetime) -> None:
    """Hold every send to `provider` until `until` (a later pause wins; an earlier one is kept)."""
    pause = session.get(ProviderPause, provider, with_for_update=True)
    if pause is None:
        session.add(ProviderPause(provider=provider, paused_until=until, reason=clip(reason, 500), updated_at=now))
    elif pause.paused_until < until:
        pause.paused_until, pause.reason, pause.updated_at = until, clip(reason, 500), now
    session.flush()


def _due_ids(now: datetime, limit: int, paused: list[str] = ()):
    # FOR UPDATE SKIP LOCKED (PostgreSQL): two workers claiming at once each take rows the
    # other has not locked, instead of waiting or taking the same ones. SQLite renders no
    # FOR UPDATE; its transactions start with BEGIN IMMEDIATE, which serialises claims.
    # Oldest page first (ids grow with time): after an outage the backlog drains in the order
    # the pages were written, not in the jittered order their retries fell due.
    due = _due(now)
    if paused:
        due = due & Notification.channel.not_in(list(paused))
    return (select(Notification.id).where(due)
            .order_by(Notification.id)
            .limit(limit).with_for_update(skip_locked=True))


def cancel_notifications_of_resolved(session: Session, *, now: datetime) -> int:
    """Pending pages of incidents resolved meanwhile → `cancelled` (never sent). Returns count."""
    resolved = select(Incident.id).where(Incident.status == "resolved")
    result = session.execute(
        update(Notification)
        .where(Notification.status == "pending", Notification.incident_id.in_(resolved))
        .values(status="cancelled", next_attempt_at=None, updated_at=now,
                last_error="incident resolved before sending")
        .execution_options(synchronize_session=False))
    return result.rowcount or 0


def recover_expired_leases(session: Session, *, now: datetime, policy: RetryPolicy) -> int:
    """Rows left `sending` past their lease (a worker died mid-send) → `pending` again.

    The interrupted send counts as an attempt (it may have reached the provider); a row past
    its retry window (or its optional attempt limit) becomes `exhausted` and fails over.
    `leased_by` is kept so the late worker can still record its outcome if it comes back.
    Returns how many rows were recovered.
    """
    expired = (Notification.status == "sending") & (Notification.lease_expires_at < now)
    note = "lease expired before the outcome was recorded (worker stopped mid-send?)"
    over = Notification.first_attempt_at <= now - timedelta(seconds=policy.window_seconds)
    if policy.max_attempts:
        over = over | (Notification.attempts + 1 >= policy.max_attempts)
    exhausted = session.execute(
        update(Notification).where(expired, over)
        .values(status="exhausted", attempts=Notification.attempts + 1, lease_expires_at=None,
                next_attempt_at=None, last_error=note, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount or 0
    retried = session.execute(
        update(Notification).where(expired)
        .values(status="pending", attempts=Notification.attempts + 1, lease_expires_at=None,
                next_attempt_at=now, last_error=note, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount or 0
    return exhausted + retried


def claim_due_notifications(session: Session, *, now: datetime, limit: int, lease_seconds: float,
                            leased_by: str) -> list[ClaimedNotification]:
    """Mark up to `limit` due `pending` rows `sending` under a lease; the caller commits at once.

    One UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) … RETURNING statement, so a
    row is taken by exactly one worker and no read-then-write window exists.
    """
    rows = session.execute(
        update(Notification).where(Notification.id.in_(_due_ids(now, limit, paused_channels(session, now=now))))
        .values(status="sending", lease_expires_at=now + timedelta(seconds=lease_seconds),
                leased_by=leased_by, updated_at=now,
                first_attempt_at=func.coalesce(Notification.first_attempt_at, now))
        .returning(Notification.id, Notification.incident_id, Notification.channel,
                   Notification.destination, Notification.subject, Notification.body,
                   Notification.attempts, Notification.user_id)
        .execution_options(synchronize_session=False)).all()
    claimed = [ClaimedNotification(*row) for row in rows]
    claimed.sort(key=lambda c: c.id)
    return claimed


def suppress_due_notifications(session: Session, *, now: datetime, limit: int) -> int:
    """Safe mode (sending disabled): due rows → `suppressed`, message kept, nobody called.

    Each suppressed page is also written on its incident's timeline so operators can see
    who would have been paged and with what text.
    """
    rows = session.execute(
        update(Notification).where(Notification.id.in_(_due_ids(now, limit)))
        .values(status="suppressed", provider_status="sending disabled", next_attempt_at=None,
                lease_expires_at=None, updated_at=now)
        .returning(Notification.id, Notification.incident_id, Notification.channel,
                   Notification.destination)
        .execution_options(synchronize_session=False)).all()
    for notification_id, incident_id, channel, destination in sorted(rows):
        incident = session.get(Incident, incident_id) if incident_id else None
        if incident is not None:
            record_event(session, incident, "notification_suppressed",
                         f"Page by {channel} suppressed: sending is disabled",
                         detail={"notification_id": notification_id, "channel": channel,
                                 "destination": destination}, now=now)
    return len(rows)


def record_send_outcome(session: Session, notification_id: int, *, outcome: str, leased_by: str,
                        now: datetime, policy: RetryPolicy, provider_message_id: str | None = None,
                        provider_status: str | None = None, error: str | None = None,
                        secrets: list[str] | tuple[str, ...] = (), rng: random.Random | None = None,
                        retry_after: float | None = None) -> str | None:
    """Record what the provider answered for a row this worker claimed; returns the new status.

    outcome: "accepted" → `sent`; "retryable" → `pending` after a backoff (at least
    `retry_after`, which also pauses the provider), or `exhausted` once the retry window has
    passed, or `cancelled` when the incident was acknowledged/resolved meanwhile;
    "permanent" → `exhausted` (the worker's failover sweep then pages the user's next contact
    method, services/failover.py). Returns None when the row is no longer ours (another worker re-claimed it after
    our lease ran out): nothing is overwritten.
    """
    notification = session.execute(
        select(Notification).where(
            Notification.id == notification_id, Notification.leased_by == leased_by,
            # `pending` too: our lease may have expired and been recovered, but if nobody
            # re-claimed the row, recording our send now prevents a second page.
            Notification.status.in_(("sending", "pending")))
        .with_for_update()).scalar_one_or_none()
    if notification is None:
        return None
    notification.attempts = (notification.attempts or 0) + 1
    notification.lease_expires_at = None
    notification.updated_at = now
    incident = session.get(Incident, notification.incident_id) if notification.incident_id else None
    label = f"{notification.channel} to {mask_destination(notification.destination)}"
    if outcome == "accepted":
        notification.status = "sent"
        notification.sent_at = now
        notification.next_attempt_at = None
        notification.provider_message_id = provider_message_id
        notification.provider_status = provider_status
        notification.last_error = None
        if incident is not None:
            record_event(session, incident, "notification_sent", f"Paged by {label}",
                         detail={"notification_id": notification.id, "channel": notification.channel,
                                 "provider_message_id": provider_message_id,
                                 "attempts": notification.attempts}, now=now)
        session.flush()
        return "sent"
    notification.last_error = clean_error(error or outcome, secrets)
    if outcome == "retryable" and retry_after:
        pause_provider(session, PROVIDERS.get(notification.channel, notification.channel),
                       until=now + timedelta(seconds=retry_after), reason=notification.last_error or "", now=now)
    if outcome == "retryable" and incident is not None and incident.status != "triggered":
        # Retries run until the incident is acknowledged or resolved: nobody needs this page now.
        notification.status = "cancelled"
        notification.next_attempt_at = None
        session.flush()
        return "cancelled"
    deadline = policy.deadline(notification.first_attempt_at, now)
    if outcome == "retryable" and now < deadline and not policy.out_of_attempts(notification.attempts):
        wait = max(policy.delay(notification.attempts, rng), retry_after or 0.0)
        notification.status = "pending"
        # One last try at the deadline rather than none: the outage may just have ended.
        notification.next_attempt_at = min(now + timedelta(seconds=wait), deadline)
        session.flush()
        return "pending"
    notification.status = "exhausted"
    notification.next_attempt_at = None
    if incident is not None:
        why = "permanent provider error" if outcome == "permanent" else "retries ran out"
        record_event(session, incident, "notification_failed",
                     f"Page by {label} failed ({why}); retry it once the cause is fixed",
                     detail={"notification_id": notification.id, "attempts": notification.attempts,
                             "error": notification.last_error}, now=now)
    session.flush()
    return "exhausted"


def release_claims(session: Session, notification_ids: list[int], *, leased_by: str,
                   now: datetime) -> int:
    """Claimed rows that were never sent (shutdown) → `pending` at once, no attempt counted."""
    if not notification_ids:
        return 0
    result = session.execute(
        update(Notification)
        .where(Notification.id.in_(notification_ids), Notification.status == "sending",
               Notification.leased_by == leased_by)
        .values(status="pending", lease_expires_at=None, leased_by=None, next_attempt_at=now,
                updated_at=now)
        .execution_options(synchronize_session=False))
    return result.rowcount or 0


def retry_notification(session: Session, notification: Notification, *, actor: User | str | None,
                       now: datetime) -> Notification:
    """Send a failed/exhausted/undeliverable page again: → `pending` now, attempts reset.

    Raises Conflict for any other status, or when the incident is already resolved (its
    pages would only be cancelled). Records a timeline event and wakes the worker.
    """
    if notification.status not in RETRYABLE_BY_HAND:
        raise Conflict(f"notification {notification.id} is {notification.status}; only "
                       f"{', '.join(RETRYABLE_BY_HAND)} notifications can be retried")
    incident = session.get(Incident, notification.incident_id) if notification.incident_id else None
    if incident is not None and incident.status == "resolved":
        raise Conflict(f"incident {incident.id} is resolved; its pages are not sent again")
    previous = notification.status
    notification.status = "pending"
    notification.attempts = 0
    notification.next_attempt_at = now
    notification.lease_expires_at = None
    notification.leased_by = None
    notification.updated_at = now
    session.flush()
    if incident is not None:
        record_event(session, incident, "notification_retry",
                     f"Retrying the page by {notification.channel} to {mask_destination(notification.destination)}",
                     actor=actor, detail={"notification_id": notification.id, "previous_status": previous,
                                          "last_error": notification.last_error}, now=now)
    notify_new_work(session)
    return notification


def get_notification(session: Session, notification_id: int) -> Notification:
    """The notification with `notification_id`, or NotFound."""
    return get_or_not_found(session, Notification, notification_id, f"notification {notification_id} not found")


def list_notifications(session: Session, *, status: str | None = None, incident_id: int | None = None,
                       page: Keyset | None = None) -> list[Notification]:
    """Notifications (with `status`, of incident `incident_id`, when given), newest first (by id for a page).

    An unknown status is Invalid under `fields["status"]`.
    """
    query = select(Notification)
    if status is not None:
        if status not in NOTIFICATION_STATUSES:
            raise Invalid("invalid filter", fields={"status": f"must be one of {', '.join(NOTIFICATION_STATUSES)}"})
        query = query.where(Notification.status == status)
    if incident_id is not None:
        query = query.where(Notification.incident_id == incident_id)
    if page is not None:
        return list(session.scalars(page.apply(query, Notification.id)))
    return list(session.scalars(query.order_by(Notification.id.desc())))
