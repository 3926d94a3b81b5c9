"""Turning provider trouble into safe, short SendResult errors."""

from __future__ import annotations

from pagerpal_core.security import clip, redact
from pagerpal_worker.providers.base import SendResult

MAX_ERROR_CHARS = 500


def safe_text(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """`text` with configured secrets and secret-looking strings removed, clipped."""
    return clip(redact(str(text), list(secrets)), MAX_ERROR_CHARS)


def retryable(text: str, secrets: list[str] | tuple[str, ...], retry_after: float | None = None) -> SendResult:
    """A retryable result whose error text has `secrets` removed."""
    return SendResult.retryable(safe_text(text, secrets), retry_after)


def permanent(text: str, secrets: list[str] | tuple[str, ...]) -> SendResult:
    """A permanent result whose error text has `secrets` removed."""
    return SendResult.permanent(safe_text(text, secrets))


class NotConfiguredSender:
    """The sender of a channel whose settings are incomplete: every page fails, saying why."""

    def __init__(self, channel: str, missing: list[str] | tuple[str, ...]):
        from pagerpal_core.services.provider_health import not_configured_error

        self.channel = channel
        self.missing = tuple(missing)
        self.error = not_configured_error(self.missing)

    def send(self, message) -> SendResult:
        """Never calls anyone: a permanent failure naming the missing settings."""
        return SendResult.permanent(self.error)
