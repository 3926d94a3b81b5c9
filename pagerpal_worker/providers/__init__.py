"""Channel senders. `SENDERS` maps a channel to its sender class; `build_senders` builds them.

The worker calls `build_senders(settings)[channel].send(OutboundMessage(...))`. A channel whose
settings are incomplete gets a sender that fails every page permanently with
"not configured: missing <SETTING>, ..." (names only, never values).
"""

from __future__ import annotations

from pagerpal_core.services.provider_health import CHANNELS, missing_settings
from pagerpal_worker.providers.base import OutboundMessage, Sender, SendResult
from pagerpal_worker.providers.errors import NotConfiguredSender
from pagerpal_worker.providers.infobip import InfobipSmsSender, InfobipWhatsAppSender
from pagerpal_worker.providers.smtp import SmtpSender
from pagerpal_worker.providers.webhook import WebhookSender

SENDERS = {
    "sms": InfobipSmsSender,
    "whatsapp": InfobipWhatsAppSender,
    "email": SmtpSender,
    "webhook": WebhookSender,
}

__all__ = ["SENDERS", "build_senders", "OutboundMessage", "Sender", "SendResult", "NotConfiguredSender"]


def build_senders(settings) -> dict[str, Sender]:
    """One sender per channel (sms, whatsapp, email, webhook) from `settings`."""
    senders: dict[str, Sender] = {}
    for channel in CHANNELS:
        missing = missing_settings(settings, channel)
        senders[channel] = NotConfiguredSender(channel, missing) if missing \
            else SENDERS[channel].from_settings(settings)
    return senders
