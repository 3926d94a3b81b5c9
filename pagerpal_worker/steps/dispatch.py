"""Dispatch due notifications: claim under a lease, send outside any transaction, record.

Before claiming, each pass fails over pages that ended failed (or went unconfirmed) to the
person's next contact method, so that page is claimed and sent in the same pass, and folds
pages over a destination's PAGES_PER_DESTINATION budget into one summary (services/bundling.py).

Safe mode (NOTIFICATION_SENDING_ENABLED=false) marks due rows `suppressed` instead, keeping
the rendered message, and calls no provider.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from pagerpal_core.services.bundling import cancel_settled_summaries, fold_excess_pages
from pagerpal_core.services.failover import fail_over_due
from pagerpal_core.services.notifications import (
    ClaimedNotification,
    RetryPolicy,
    cancel_notifications_of_resolved,
    claim_due_notifications,
    clean_error,
    record_send_outcome,
    recover_expired_leases,
    release_claims,
    suppress_due_notifications,
)
from pagerpal_worker import systemd
from pagerpal_worker.context import DISPATCH_CONCURRENCY, WorkerContext
from pagerpal_worker.providers.base import OutboundMessage, SendResult

log = logging.getLogger("pagerpal.worker.dispatch")


@dataclass(frozen=True)
class Outcome:
    notification_id: int
    result: SendResult
    at: datetime


def claim_limit(ctx: WorkerContext, batch_limit: int) -> int:
    """How many rows one cycle may claim so every send can finish inside its lease."""
    settings = ctx.settings
    per_thread = max(1, int(settings.notification_lease_seconds // (settings.provider_timeout_seconds + 1)))
    return max(1, min(batch_limit, DISPATCH_CONCURRENCY * per_thread))


def sweep_due(ctx: WorkerContext, now: datetime) -> bool:
    """Whether lease recovery and the cancel sweep run in this pass."""
    last = ctx.last_sweep_at
    return last is None or not timedelta(0) <= now - last < timedelta(seconds=ctx.settings.worker_poll_interval)


def run(ctx: WorkerContext, now: datetime, limit: int) -> int:
    """One dispatch pass; returns how many rows it settled (sent, retried, failed, suppressed)."""
    flush_unrecorded(ctx)
    settings = ctx.settings
    cancelled = recovered = 0
    failed_over = run_failover(ctx, now, limit)
    with ctx.session_factory() as session:
        if sweep_due(ctx, now):
            # Housekeeping once per poll interval, not on every wake-up: it is not on the
            # path of a new page, and wake-ups come as often as pages do.
            cancelled = cancel_notifications_of_resolved(session, now=now)
            recovered = recover_expired_leases(session, now=now, policy=RetryPolicy.from_settings(settings))
            ctx.last_sweep_at = now
        if not settings.notification_sending_enabled:
            suppressed = suppress_due_notifications(session, now=now, limit=limit)
            session.commit()
            ctx.more_work = ctx.more_work or suppressed == limit
            return suppressed + cancelled + failed_over
        batch = claim_limit(ctx, limit)
        # Per-destination budget first: pages over it fold into one summary instead of going out.
        fold_excess_pages(session, now=now, per_destination=settings.pages_per_destination,
                          window_seconds=settings.page_bundle_window_seconds, base_url=settings.base_url)
        cancel_settled_summaries(session, now=now)
        claimed = claim_due_notifications(session, now=now, limit=batch,
                                          lease_seconds=settings.notification_lease_seconds,
                                          leased_by=ctx.identity)
        # The lease is committed before any provider is called: a crash from here on leaves
        # rows that come back after the lease, never rows that vanish.
        session.commit()
    if recovered:
        log.warning("recovered notifications whose lease expired", extra={"fields": {"count": recovered}})
    if not claimed:
        return cancelled + failed_over
    if len(claimed) == batch:
        ctx.more_work = True
    return cancelled + failed_over + send_claimed(ctx, claimed, now)


def run_failover(ctx: WorkerContext, now: datetime, limit: int) -> int:
    """Fail over failed and unconfirmed pages (own transaction); returns how many it handled.

    The delivery-confirmation timeout applies only when receipts are configured
    (INFOBIP_RECEIPT_TOKEN): without receipts no SMS would ever count as delivered.
    """
    settings = ctx.settings
    confirm = settings.delivery_confirm_seconds if settings.infobip_receipt_token else None
    with ctx.session_factory() as session:
        handled = fail_over_due(session, now=now, base_url=settings.base_url, confirm_seconds=confirm, limit=limit)
        session.commit()
    if handled >= limit:
        ctx.more_work = True
    return handled


def send_claimed(ctx: WorkerContext, claimed: list[ClaimedNotification], now: datetime) -> int:
    """Send each claimed row on the thread pool; record outcomes as they arrive.

    Whatever finished together is recorded in one transaction, so a fast provider costs one
    commit per handful of pages, and a slow one never holds finished outcomes back.
    Outcome times are the cycle's `now` plus the real time elapsed since, so a cycle run
    with a chosen clock (tests) stays consistent with it.
    """
    started = time.monotonic()
    lease_deadline = started + ctx.settings.notification_lease_seconds
    futures = {ctx.executor.submit(_send_one, ctx, item, lease_deadline): item for item in claimed}
    unsent: list[int] = []
    settled = 0
    waiting = set(futures)
    while waiting:
        done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
        at = now + timedelta(seconds=time.monotonic() - started)
        outcomes = []
        for future in done:
            item, result = futures[future], future.result()  # _send_one never raises
            if result is None:
                unsent.append(item.id)
            else:
                outcomes.append(Outcome(item.id, result, at))
        if outcomes:
            settled += len(outcomes)
            record(ctx, outcomes)
            systemd.watchdog()  # progress: a long batch against a slow provider is not a hang
    if unsent:
        with ctx.session_factory() as session:
            released = release_claims(session, unsent, leased_by=ctx.identity,
                                      now=now + timedelta(seconds=time.monotonic() - started))
            session.commit()
        log.info("returned unsent claimed notifications", extra={"fields": {"count": released}})
    return settled


def _send_one(ctx: WorkerContext, item: ClaimedNotification, lease_deadline: float) -> SendResult | None:
    """The provider call for one row; None when it was not attempted (stopping, lease too short)."""
    if ctx.stop.is_set():
        return None
    # Never start a send that could outlive the lease: another worker could take the row.
    if time.monotonic() + ctx.settings.provider_timeout_seconds + 1 > lease_deadline:
        return None
    sender = ctx.senders.get(item.channel)
    if sender is None:
        return SendResult.permanent(f"no {item.channel} provider is configured")
    message = OutboundMessage(notification_id=item.id, channel=item.channel, destination=item.destination,
                              subject=item.subject, body=item.body, incident_id=item.incident_id)
    try:
        return sender.send(message)
    except Exception as exc:  # a sender bug must not kill the loop; retry later
        log.exception("sender raised", extra={"fields": {"notification_id": item.id, "channel": item.channel}})
        return SendResult.retryable(f"{type(exc).__name__}: {exc}")


def record(ctx: WorkerContext, outcomes: list[Outcome]) -> None:
    """Write outcomes in one transaction; keep them in memory if the database is away."""
    policy = RetryPolicy.from_settings(ctx.settings)
    secrets = ctx.settings.secret_values()
    try:
        with ctx.session_factory() as session:
            statuses = [record_send_outcome(
                session, o.notification_id, outcome=o.result.outcome, leased_by=ctx.identity, now=o.at,
                policy=policy, provider_message_id=o.result.provider_message_id,
                provider_status=o.result.provider_status, error=o.result.error, secrets=secrets, rng=ctx.rng,
                retry_after=o.result.retry_after)
                for o in outcomes]
            session.commit()
    except Exception as exc:
        ctx.unrecorded.extend(outcomes)
        log.error("could not record send outcomes; will retry",
                  extra={"fields": {"notification_ids": [o.notification_id for o in outcomes],
                                    "error": clean_error(f"{type(exc).__name__}: {exc}", secrets)}})
        return
    for outcome, status in zip(outcomes, statuses, strict=True):
        result = outcome.result
        fields = {"notification_id": outcome.notification_id, "outcome": result.outcome, "status": status}
        if status == "exhausted":
            ctx.more_work = True  # run again at once: the failover sweep pages the next contact method
        if status is None:
            log.warning("send outcome for a row no longer leased to this worker", extra={"fields": fields})
        elif result.outcome == "accepted":
            log.info("notification sent", extra={"fields": fields})
        else:
            fields["error"] = clean_error(result.error, secrets)
            log.warning("notification send failed", extra={"fields": fields})


def flush_unrecorded(ctx: WorkerContext) -> None:
    """Record outcomes left over from a database outage."""
    pending, ctx.unrecorded = ctx.unrecorded, []
    if pending:
        record(ctx, pending)
