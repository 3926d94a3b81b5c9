"""Page text per channel, rendered from an incident when its outbox row is written.

SMS stays within two segments: 306 GSM-7 septets, or 134 characters when the text needs
UCS-2 (any character outside the GSM alphabet). The description is shortened first, then
the title; the link and the reply hint never are. A page written by paging carries its
signed action link (`/a/<token>`) and, on SMS/WhatsApp, its reply code:
`[CRITICAL] Disk full (grafana) 95% used https://…/a/<token> Reply 4821 ACK / 4821 RES`.
Email gets the subject `[SEVERITY] title`, a plain-text and an HTML body with one link per
action (Acknowledge, Resolve, Escalate) and the incident's URL.
"""

from __future__ import annotations

from dataclasses import dataclass

from pagerpal_core.models import Incident

WHATSAPP_LIMIT = 1000
SMS_ELLIPSIS = "..."      # "…" is not in the GSM alphabet: one would turn the SMS into UCS-2

# GSM 03.38: the basic alphabet (one septet each) and the extension table (two: ESC + char).
GSM_BASIC = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
                "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENDED = set("^{}\\[~]|€\f")


def sms_units(text: str) -> tuple[str, int]:
    """(encoding, length in that encoding's units): ("GSM-7", septets) or ("UCS-2", code units)."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text):
        return "GSM-7", sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
    return "UCS-2", sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def sms_fits(text: str, segments: int = 2) -> bool:
    """Whether `text` fits in `segments` concatenated SMS segments."""
    encoding, units = sms_units(text)
    per_segment = (153 if encoding == "GSM-7" else 67) if segments > 1 else (160 if encoding == "GSM-7" else 70)
    return units <= per_segment * segments


@dataclass(frozen=True)
class RenderedMessage:
    """A page's subject and plain-text body (the email's HTML part is made from this text when it is sent)."""

    subject: str
    body: str


def incident_url(base_url: str, incident_id: int) -> str:
    """The incident's page under `base_url`."""
    return f"{base_url.rstrip('/')}/incidents/{incident_id}"


def action_url(base_url: str, token: str, action: str | None = None) -> str:
    """A page's signed action link `PAGERPAL_BASE_URL/a/<token>`; `action` preselects a button."""
    url = f"{base_url.rstrip('/')}/a/{token}"
    return f"{url}?do={action}" if action else url


def reply_hint(code: str) -> str:
    """The reply commands line every SMS/WhatsApp page ends with."""
    return f"Reply {code} ACK / {code} RES"


# The email page's action links, each opening the confirm page with that button preselected.
EMAIL_ACTIONS = (("ack", "Acknowledge"), ("resolve", "Resolve"), ("escalate", "Escalate"))


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _fit(head: str, description: str, tail: str, limit: int) -> str:
    """head + description + tail within `limit` characters, shortening only the description."""
    room = limit - len(head) - len(tail)
    if room <= 1:
        return (head[: max(0, limit - len(tail) - 1)].rstrip() + "…" + tail)[:limit] if head else tail[:limit]
    if len(description) > room:
        description = description[: room - 1].rstrip() + "…"
    return head + description + tail


def _shorten(text: str, keep: int, ellipsis: str) -> str:
    return text[:keep].rstrip() + ellipsis if keep > 0 else ""


def _fit_sms(head: str, description: str, tail: str) -> str:
    """head + " " + description + tail within two SMS segments, shortening the description
    first and then the head; `tail` (the link) is kept whole."""
    def build(h: str, d: str) -> str:
        return h + (" " + d if d else "") + tail

    text = build(head, description)
    if sms_fits(text):
        return text
    # Drop description characters until it fits (the length in units is monotonic in the
    # number of characters kept, so a binary search finds the longest that fits).
    lo, hi = 0, len(description)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sms_fits(build(head, _shorten(description, mid, SMS_ELLIPSIS))):
            lo = mid
        else:
            hi = mid - 1
    if lo > 0:
        return build(head, _shorten(description, lo, SMS_ELLIPSIS))
    lo, hi = 0, len(head)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sms_fits(build(_shorten(head, mid, SMS_ELLIPSIS), "")):
            lo = mid
        else:
            hi = mid - 1
    return build(_shorten(head, lo, SMS_ELLIPSIS), "").lstrip()


def subject_line(incident: Incident) -> str:
    """The page's subject: severity in capitals and the title on one line, at most 500 characters."""
    return f"[{incident.severity.upper()}] {_one_line(incident.title)}"[:500]


def render_page(incident: Incident, channel: str, *, base_url: str, source_name: str | None = None,
                action_token: str | None = None, reply_code: str | None = None) -> RenderedMessage:
    """The message that pages someone about `incident` on `channel` (sms, whatsapp, email).

    With `action_token`, the page carries its signed action link instead of the incident's
    URL (SMS, WhatsApp) or beside it (email: one link per action); with `reply_code`, an
    SMS/WhatsApp page ends with the reply commands hint. The link and hint are never cut.
    """
    link = action_url(base_url, action_token) if action_token else incident_url(base_url, incident.id)
    hint = reply_hint(reply_code) if reply_code else ""
    source = source_name or (incident.alert_source.name if incident.alert_source is not None else "manual")
    subject = subject_line(incident)
    description = _one_line(incident.description)
    if channel == "sms":
        body = _fit_sms(f"{subject} ({source})", description, f" {link}" + (f" {hint}" if hint else ""))
        return RenderedMessage(subject=subject, body=body)
    if channel == "whatsapp":
        head = f"*{subject}*\nSource: {source}\n"
        body = _fit(head, description, f"\n{link}" + (f"\n{hint}" if hint else ""), WHATSAPP_LIMIT)
        return RenderedMessage(subject=subject, body=body)
    page = incident_url(base_url, incident.id)
    actions = [(label, action_url(base_url, action_token, action)) for action, label in EMAIL_ACTIONS] \
        if action_token else []
    text = (f"{subject}\n\nSeverity: {incident.severity}\nSource: {source}\nStatus: {incident.status}\n\n"
            f"{incident.description or ''}\n\n")
    if actions:
        text += "".join(f"{label}: {url}\n" for label, url in actions)
        text += "(each link opens a confirmation page; no sign-in needed)\n\n"
    text += f"Open the incident: {page}\n"
    return RenderedMessage(subject=subject, body=text)
