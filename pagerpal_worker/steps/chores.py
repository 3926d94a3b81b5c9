"""Outbound chores the web may not do itself (it never calls out): confirm SNS subscriptions,
fetch the SNS signing certificates the web asked for."""

from __future__ import annotations

from datetime import datetime

import requests

from pagerpal_core.services.audit import purge_old_audit_events
from pagerpal_core.services.sns import confirm_pending_subscriptions, sns_url_region
from pagerpal_core.services.sns_signatures import MAX_PEM_BYTES, fetch_wanted_signing_certs, signing_cert_url_region
from pagerpal_worker.context import WorkerContext


class FetchRefused(ValueError):
    """The URL is not an Amazon SNS endpoint."""


def make_sns_fetch(timeout: float):
    """A fetch(url) -> HTTP status that only GETs https://sns.<region>.amazonaws.com/ URLs."""

    def fetch(url: str) -> int:
        # A SubscribeURL comes from an unauthenticated webhook body, so anything but SNS's own
        # hosts would let a caller make the worker fetch arbitrary URLs. The allow-list is the
        # one the webhook applied when it recorded the URL; checking again here guards rows
        # that did not come through it.
        if sns_url_region(url) is None:
            raise FetchRefused("not an https://sns.<region>.amazonaws.com/ URL")
        # No redirects (a redirect could lead anywhere) and no body read: the status says it all.
        with requests.get(url, timeout=timeout, allow_redirects=False, stream=True) as response:
            return response.status_code

    return fetch


def make_cert_fetch(timeout: float):
    """A fetch(url) -> PEM bytes that only GETs https://sns.<region>.amazonaws.com/….pem URLs."""

    def fetch(url: str) -> bytes:
        # Pinned to SNS's hosts (the same allow-list as SubscribeURLs), TLS verified, no
        # redirects, and at most MAX_PEM_BYTES read: the URL came from a webhook body.
        if signing_cert_url_region(url) is None:
            raise FetchRefused("not an https://sns.<region>.amazonaws.com/….pem URL")
        with requests.get(url, timeout=timeout, allow_redirects=False, stream=True) as response:
            if response.status_code != 200:
                raise FetchRefused(f"SNS answered HTTP {response.status_code}")
            body = response.raw.read(MAX_PEM_BYTES + 1, decode_content=True)
        if len(body) > MAX_PEM_BYTES:
            raise FetchRefused("certificate is too large")
        return body

    return fetch


def run(ctx: WorkerContext, now: datetime, limit: int) -> int:
    """Confirm SNS subscriptions the webhook recorded as pending and fetch wanted SNS signing
    certificates; returns how many were handled."""
    timeout = ctx.settings.provider_timeout_seconds
    with ctx.session_factory() as session:
        counts = confirm_pending_subscriptions(session, now=now, fetch=make_sns_fetch(timeout), limit=limit)
        session.commit()
    with ctx.session_factory() as session:
        certs = fetch_wanted_signing_certs(session, now=now, fetch=make_cert_fetch(timeout), limit=limit)
        session.commit()
    # Audit retention: the only deletion of audit rows, in batches, each in its own transaction.
    with ctx.session_factory() as session:
        purged = purge_old_audit_events(session, now=now, retention_days=ctx.settings.audit_retention_days)
        session.commit()
    return sum(counts.values()) + sum(certs.values()) + purged
