"""Chat webhooks: POST the page's stored JSON body to its URL (Slack, Mattermost, or any JSON receiver).

- 2xx → accepted; 429, 5xx, timeouts and connection errors → retryable; other 4xx → permanent
  (a deleted Slack webhook answers 404 or 410 for ever).
- Redirects are not followed: a 3xx is a permanent failure naming the status, so a webhook
  cannot be bounced to an address its URL check refused.
- The URL is checked again before every POST (the host may now resolve somewhere private),
  and its path — the webhook's credential — never appears in an error: it is redacted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from pagerpal_core.services.webhooks import webhook_url_problem
from pagerpal_worker.providers.base import OutboundMessage, SendResult
from pagerpal_worker.providers.errors import permanent, retryable

USER_AGENT = "PagerPal-Webhook/1"


class WebhookSender:
    """Sends `webhook` pages. One requests call per page; no session (each URL is its own server)."""

    channel = "webhook"

    def __init__(self, *, timeout: float = 10.0, allow_private: bool = False, secrets: tuple[str, ...] = ()):
        self.timeout = timeout
        self.allow_private = allow_private
        self.secrets = tuple(secrets)

    @classmethod
    def from_settings(cls, settings) -> WebhookSender:
        """The webhook sender the settings configure (timeout, WEBHOOK_ALLOW_PRIVATE)."""
        return cls(timeout=settings.provider_timeout_seconds, allow_private=settings.webhook_allow_private,
                   secrets=tuple(settings.secret_values()))

    def send(self, message: OutboundMessage) -> SendResult:
        """POST the stored body; never raises for network or server trouble."""
        url = message.destination
        parts = urlsplit(url)
        hidden = [s for s in (parts.path, parts.query, url) if s and len(s) >= 4]
        secrets = self.secrets + tuple(hidden)
        problem = webhook_url_problem(url, allow_private=self.allow_private)
        if problem:
            return permanent(f"webhook URL refused: {problem}", secrets)
        host = parts.hostname
        try:
            response = requests.post(url, data=message.body.encode("utf-8"), allow_redirects=False,
                                     headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
                                     timeout=(self.timeout, self.timeout))
        except requests.Timeout:
            return retryable(f"timed out after {self.timeout:g}s posting to {host}", secrets)
        except requests.RequestException as exc:
            return retryable(f"could not post to {host}: {type(exc).__name__}", secrets)
        status = response.status_code
        if 200 <= status < 300:
            return SendResult.accepted(None, f"HTTP {status}")
        if 300 <= status < 400:
            return permanent(f"{host} answered {status} (a redirect; redirects are not followed)", secrets)
        # No Retry-After pause here: the pause is per provider, and one chat server's 429 must
        # not hold every other team's webhook. Backoff within the retry window still applies.
        if status == 429 or status >= 500:
            return retryable(f"{host} answered {status}", secrets)
        return permanent(f"{host} answered {status}", secrets)
