"""The one interface every channel sender implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Outcome = Literal["accepted", "retryable", "permanent"]


@dataclass(frozen=True)
class OutboundMessage:
    """What a sender needs, copied out of a claimed notification row (no session attached)."""

    notification_id: int
    channel: str           # sms | whatsapp | email
    destination: str       # E.164 number or email address
    subject: str
    body: str
    incident_id: int | None = None


@dataclass(frozen=True)
class SendResult:
    """accepted (with the provider's id), or a retryable/permanent failure saying why."""

    outcome: Outcome
    provider_message_id: str | None = None
    provider_status: str | None = None
    error: str | None = None
    # Seconds the provider asked us to wait (429 Retry-After): pauses every send to it.
    retry_after: float | None = None

    @classmethod
    def accepted(cls, message_id: str | None, status: str | None = None) -> SendResult:
        """The provider took the message (its id and status kept for receipts)."""
        return cls("accepted", provider_message_id=message_id, provider_status=status)

    @classmethod
    def retryable(cls, error: str, retry_after: float | None = None) -> SendResult:
        """A failure worth retrying (after `retry_after` seconds when the provider said so)."""
        return cls("retryable", error=error, retry_after=retry_after)

    @classmethod
    def permanent(cls, error: str) -> SendResult:
        """A failure retrying cannot fix (bad destination, refused credentials)."""
        return cls("permanent", error=error)


class Sender(Protocol):
    channel: str

    def send(self, message: OutboundMessage) -> SendResult:
        """Deliver `message`; never raises for provider trouble, returns a SendResult."""
