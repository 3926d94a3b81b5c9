"""Amazon SNS subscriptions for CloudWatch sources.

The web only records a SubscriptionConfirmation (it never calls out); the worker's chore
`confirm_pending_subscriptions` visits the SubscribeURL. Only URLs on SNS's own hosts
(`https://sns.<region>.amazonaws.com/...`, and `.amazonaws.com.cn` in China) are
recorded or fetched, so a forged confirmation cannot make PagerPal request any other host.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagerpal_core.db import is_postgres
from pagerpal_core.errors import Invalid
from pagerpal_core.logs import log_fields
from pagerpal_core.models import AlertSource, SnsSubscription
from pagerpal_core.payloads.common import SnsControl
from pagerpal_core.security import clip, redact

log = logging.getLogger("pagerpal.sns")

SNS_HOST_RE = re.compile(r"^sns\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$")
TOPIC_ARN_RE = re.compile(
    r"^arn:aws(?:-[a-z]+)*:sns:([a-z]{2}(?:-[a-z]+)+-\d+):\d{12}:[A-Za-z0-9_.-]{1,256}$")
MAX_ATTEMPTS = 8
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)


def sns_url_region(url: str | None) -> str | None:
    """The AWS region of an SNS SubscribeURL, or None when it is not one (wrong scheme,
    host, port or embedded credentials)."""
    if not isinstance(url, str) or len(url) > 2_000:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or parts.username or parts.password or port not in (None, 443):
        return None
    match = SNS_HOST_RE.match(parts.hostname or "")
    return match.group(1) if match else None


def record_sns_control(session: Session, source: AlertSource, control: SnsControl, *,
                       now: datetime) -> SnsSubscription:
    """Record a SubscriptionConfirmation (pending, for the worker) or an UnsubscribeConfirmation.

    A topic that subscribes again resets its row to pending with the new URL.
    """
    arn_match = TOPIC_ARN_RE.match(control.topic_arn or "")
    if not arn_match:
        raise Invalid("invalid SNS message", fields={"TopicArn": "must be an SNS topic ARN"})
    if control.type == "SubscriptionConfirmation":
        region = sns_url_region(control.subscribe_url)
        if region is None:
            raise Invalid("invalid SNS subscription confirmation",
                          fields={"SubscribeURL": "must be an https://sns.<region>.amazonaws.com/ URL"})
        if region != arn_match.group(1):
            raise Invalid("invalid SNS subscription confirmation",
                          fields={"SubscribeURL": "its region does not match the topic's"})
        changes = dict(subscribe_url=control.subscribe_url, message_id=control.message_id, status="pending",
                       attempts=0, last_error=None, received_at=now, next_attempt_at=now, confirmed_at=None)
    else:
        changes = dict(message_id=control.message_id, status="unsubscribed", received_at=now,
                       next_attempt_at=None)
    row = SnsSubscription(alert_source_id=source.id, topic_arn=control.topic_arn, **changes)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        row = session.scalars(select(SnsSubscription).where(
            SnsSubscription.alert_source_id == source.id, SnsSubscription.topic_arn == control.topic_arn)
            .with_for_update().execution_options(populate_existing=True)).one()
        for attr, value in changes.items():
            setattr(row, attr, value)
        session.flush()
    log.info("sns message recorded", extra=log_fields(
        source_id=source.id, sns_type=control.type, topic_arn=control.topic_arn, status=row.status))
    return row


def _status_of(response) -> int:
    return response if isinstance(response, int) else int(response.status_code)


def confirm_pending_subscriptions(session: Session, *, now: datetime, fetch, limit: int = 10) -> dict:
    """Visit the SubscribeURL of pending subscriptions that are due; returns counts.

    `fetch(url)` does the HTTP GET and returns the status code (an int) or a response with
    `.status_code` (a `requests.Response`); it may raise on network errors. A 2xx
    confirms; anything else is retried with backoff up to MAX_ATTEMPTS, then marked
    failed. Rows are claimed with SKIP LOCKED on PostgreSQL. The caller commits.
    """
    query = (select(SnsSubscription)
             .where(SnsSubscription.status == "pending",
                    or_(SnsSubscription.next_attempt_at.is_(None), SnsSubscription.next_attempt_at <= now))
             .order_by(SnsSubscription.id).limit(limit))
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    counts = {"confirmed": 0, "retrying": 0, "failed": 0}
    for row in session.scalars(query).all():
        row.attempts += 1
        if sns_url_region(row.subscribe_url) is None:
            # Never fetched: the row did not come through record_sns_control's check.
            row.status, row.last_error, row.next_attempt_at = "failed", "SubscribeURL is not an SNS URL", None
            counts["failed"] += 1
            continue
        try:
            status = _status_of(fetch(row.subscribe_url))
            error = None if 200 <= status < 300 else f"SNS answered HTTP {status}"
        except Exception as exc:  # any transport failure is a retry, never a crash of the chore
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            row.status, row.confirmed_at, row.last_error, row.next_attempt_at = "confirmed", now, None, None
            counts["confirmed"] += 1
        elif row.attempts >= MAX_ATTEMPTS:
            row.status, row.last_error, row.next_attempt_at = "failed", clip(redact(error), 1000), None
            counts["failed"] += 1
        else:
            delay = min(RETRY_MAX, RETRY_BASE * (2 ** (row.attempts - 1)))
            row.last_error, row.next_attempt_at = clip(redact(error), 1000), now + delay
            counts["retrying"] += 1
        log.info("sns subscription confirmation attempt", extra=log_fields(
            subscription_id=row.id, source_id=row.alert_source_id, status=row.status, attempts=row.attempts))
    session.flush()
    return counts


def sns_subscriptions_by_source(session: Session) -> dict[int, list[SnsSubscription]]:
    """Every SNS subscription grouped by alert source id, oldest first within a source (the sources page)."""
    grouped: dict[int, list[SnsSubscription]] = {}
    for sub in session.scalars(select(SnsSubscription).order_by(SnsSubscription.id)):
        grouped.setdefault(sub.alert_source_id, []).append(sub)
    return grouped


def list_sns_subscriptions(session: Session, source_id: int) -> list[SnsSubscription]:
    """A source's SNS subscriptions, newest first (the UI shows pending/confirmed/failed)."""
    return list(session.scalars(select(SnsSubscription).where(SnsSubscription.alert_source_id == source_id)
                                .order_by(SnsSubscription.received_at.desc(), SnsSubscription.id.desc())))
