"""Page text per channel, rendered from an incident when its outbox row is written.

SMS stays within two GSM segments (306 characters): the description is shortened, never
the link. Email gets the subject `[SEVERITY] title`, a plain-text and an HTML body.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from pagerpal_core.models import Incident

SMS_LIMIT = 306           # two concatenated GSM-7 segments (153 characters each)
WHATSAPP_LIMIT = 1000


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str            # plain text (SMS, WhatsApp, email text part)
    html: str | None = None  # email HTML part


def incident_url(base_url: str, incident_id: int) -> str:
    return f"{base_url.rstrip('/')}/incidents/{incident_id}"


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


def subject_line(incident: Incident) -> str:
    return f"[{incident.severity.upper()}] {_one_line(incident.title)}"[:500]


def render_page(incident: Incident, channel: str, *, base_url: str, source_name: str | None = None) \
        -> RenderedMessage:
    """The message that pages someone about `incident` on `channel` (sms, whatsapp, email)."""
    link = incident_url(base_url, incident.id)
    source = source_name or (incident.alert_source.name if incident.alert_source is not None else "manual")
    subject = subject_line(incident)
    description = _one_line(incident.description)
    if channel == "sms":
        head = f"{subject} ({source})"
        body = _fit(head + (" " if description else ""), description, f" {link}", SMS_LIMIT)
        return RenderedMessage(subject=subject, body=body)
    if channel == "whatsapp":
        head = f"*{subject}*\nSource: {source}\n"
        body = _fit(head, description, f"\n{link}", WHATSAPP_LIMIT)
        return RenderedMessage(subject=subject, body=body)
    text = (f"{subject}\n\nSeverity: {incident.severity}\nSource: {source}\nStatus: {incident.status}\n\n"
            f"{incident.description or ''}\n\nOpen the incident: {link}\n")
    esc = html.escape
    html_body = (f"<h2>{esc(subject)}</h2><p><b>Severity:</b> {esc(incident.severity)}<br>"
                 f"<b>Source:</b> {esc(source)}<br><b>Status:</b> {esc(incident.status)}</p>"
                 f"<p>{esc(incident.description or '')}</p>"
                 f"<p><a href=\"{esc(link)}\">Open the incident</a></p>")
    return RenderedMessage(subject=subject, body=text, html=html_body)
