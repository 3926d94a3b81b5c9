"""Which delivery channels are ready to send, by setting name (never by value).

Used by `/settings`, `flask pagerpal check`, `GET /api/v1/system/jobs` and by the worker's
`build_senders`, so "configured" means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNELS = ("sms", "whatsapp", "email", "webhook")
# webhook: each contact method or team names its own URL, so there is nothing to configure.
PROVIDERS = {"sms": "infobip", "whatsapp": "infobip", "email": "smtp", "webhook": "webhook"}

# Settings each channel cannot send without: (env name, Settings field).
REQUIRED_SETTINGS = {
    "sms": (("INFOBIP_BASE_URL", "infobip_base_url"), ("INFOBIP_API_KEY", "infobip_api_key"),
            ("INFOBIP_SMS_SENDER", "infobip_sms_sender")),
    "whatsapp": (("INFOBIP_BASE_URL", "infobip_base_url"), ("INFOBIP_API_KEY", "infobip_api_key"),
                 ("INFOBIP_WHATSAPP_SENDER", "infobip_whatsapp_sender")),
    "email": (("SMTP_HOST", "smtp_host"), ("SMTP_FROM", "smtp_from")),
    "webhook": (),
}

MODE_SAFE = "safe"   # NOTIFICATION_SENDING_ENABLED=false: pages recorded as suppressed, nobody called
MODE_LIVE = "live"   # pages go to the providers


@dataclass(frozen=True)
class ChannelHealth:
    """One channel's readiness. `missing` holds setting names only."""

    channel: str
    provider: str
    configured: bool
    missing: tuple[str, ...]
    mode: str
    summary: str

    def as_dict(self) -> dict:
        """The channel's health as JSON-ready values."""
        return {"channel": self.channel, "provider": self.provider, "configured": self.configured,
                "missing": list(self.missing), "mode": self.mode, "summary": self.summary}


def sending_mode(settings) -> str:
    """`live` when NOTIFICATION_SENDING_ENABLED is true, else `safe`."""
    return MODE_LIVE if settings.notification_sending_enabled else MODE_SAFE


def missing_settings(settings, channel: str) -> list[str]:
    """Names of the settings `channel` still needs (empty when it is fully configured).

    SMTP_USER and SMTP_PASSWORD are optional (an open relay needs neither) but go together:
    one without the other is reported as missing the other.
    """
    if channel not in REQUIRED_SETTINGS:
        raise ValueError(f"unknown channel {channel!r}")
    missing = [env for env, attr in REQUIRED_SETTINGS[channel] if not str(getattr(settings, attr) or "").strip()]
    if channel == "email":
        if settings.smtp_user and not settings.smtp_password:
            missing.append("SMTP_PASSWORD")
        if settings.smtp_password and not settings.smtp_user:
            missing.append("SMTP_USER")
    return missing


def not_configured_error(missing: list[str] | tuple[str, ...]) -> str:
    """The error a page gets when its channel cannot send: names the missing settings."""
    return "not configured: missing " + ", ".join(missing)


def channel_health(settings, channel: str) -> ChannelHealth:
    """Readiness of one channel."""
    missing = tuple(missing_settings(settings, channel))
    mode = sending_mode(settings)
    if mode == MODE_SAFE:
        summary = "safe mode: pages are recorded as suppressed, not sent"
        if missing:
            summary += f" ({not_configured_error(missing)})"
    elif missing:
        summary = f"{not_configured_error(missing)}; pages on this channel fail"
    else:
        summary = f"sending via {PROVIDERS[channel]}"
    return ChannelHealth(channel=channel, provider=PROVIDERS[channel], configured=not missing,
                         missing=missing, mode=mode, summary=summary)


def provider_health(settings) -> list[ChannelHealth]:
    """Every channel's readiness, in CHANNELS order."""
    return [channel_health(settings, channel) for channel in CHANNELS]


def provider_health_report(settings) -> dict:
    """The JSON-ready report: sending mode, receipt-token presence and each channel."""
    return {
        "sending_enabled": bool(settings.notification_sending_enabled),
        "mode": sending_mode(settings),
        "receipt_token_configured": bool(settings.infobip_receipt_token),
        "channels": [health.as_dict() for health in provider_health(settings)],
    }
