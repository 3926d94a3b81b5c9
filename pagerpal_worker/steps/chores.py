"""Outbound chores the web may not do itself (it never calls out): confirm SNS subscriptions."""

from __future__ import annotations

import re
from datetime import datetime

import requests

from pagerpal_worker.context import WorkerContext
from pagerpal_worker.steps.optional import optional_service

SNS_CONFIRM = ("pagerpal_core.services.sns", "confirm_pending_subscriptions")
# Only Amazon SNS endpoints are ever fetched: a SubscribeURL comes from an unauthenticated
# webhook body, so anything else would let a caller make the worker fetch arbitrary URLs.
SNS_URL = re.compile(r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[^\s]*$")


class FetchRefused(ValueError):
    """The URL is not an Amazon SNS endpoint."""


def make_sns_fetch(timeout: float):
    """A fetch(url) -> HTTP status that only GETs https://sns.<region>.amazonaws.com/ URLs."""

    def fetch(url: str) -> int:
        if not isinstance(url, str) or not SNS_URL.match(url):
            raise FetchRefused("not an https://sns.<region>.amazonaws.com/ URL")
        # No redirects (a redirect could lead anywhere) and no body read: the status says it all.
        with requests.get(url, timeout=timeout, allow_redirects=False, stream=True) as response:
            return response.status_code

    return fetch


def run(ctx: WorkerContext, now: datetime, limit: int) -> int:
    """Confirm SNS subscriptions the webhook recorded as pending; returns how many were handled."""
    confirm = optional_service(ctx, *SNS_CONFIRM)
    if confirm is None:
        return 0
    with ctx.session_factory() as session:
        counts = confirm(session, now=now, fetch=make_sns_fetch(ctx.settings.provider_timeout_seconds),
                         limit=limit)
        session.commit()
    return sum(counts.values()) if isinstance(counts, dict) else int(counts or 0)
