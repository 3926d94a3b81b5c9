"""Chat webhooks: URL validation, the JSON a webhook receives, and team webhooks as escalation targets.

A webhook is a URL we POST JSON to: a contact method on channel `webhook`, or a team's
`webhook_url` that an escalation level targets (`team_webhook`). The body is Slack- and
Mattermost-compatible `{"text": ...}` by default, or (`json`) the incident as plain fields.
The body is rendered when the page is queued and stored on the notification, so the worker's
sender only POSTs it.

URLs are validated where they are saved and again by the sender before each POST: http or
https, at most 2,000 characters, and no private, loopback, link-local (169.254.169.254, the
cloud metadata address) or otherwise reserved address after resolving the host, unless
WEBHOOK_ALLOW_PRIVATE=true. The path of a webhook URL is its credential, so it is masked
wherever a destination is shown (security.mask_destination).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from datetime import datetime
from functools import lru_cache
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagerpal_core.errors import Invalid
from pagerpal_core.messages import RenderedMessage, incident_url, subject_line
from pagerpal_core.models import EscalationLevel, Incident, Notification, Team
from pagerpal_core.models.users import MAX_DESTINATION, WEBHOOK_FORMATS

DEFAULT_FORMAT = "slack"


@lru_cache(maxsize=1)
def allow_private_default() -> bool:
    """WEBHOOK_ALLOW_PRIVATE of this process (read once, like every setting)."""
    from pagerpal_core.settings import Settings

    return bool(Settings.from_env().webhook_allow_private)


def _address_problem(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_link_local:
        return f"resolves to a link-local address ({ip}), such as the cloud metadata service"
    if ip.is_loopback or ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified \
            or not ip.is_global:
        return f"resolves to a private or reserved address ({ip})"
    return None


def webhook_url_problem(url, *, allow_private: bool | None = None) -> str | None:
    """Why `url` cannot be a webhook destination, or None. Resolves the host (DNS) to check its addresses."""
    if allow_private is None:
        allow_private = allow_private_default()
    if not isinstance(url, str) or not url.strip():
        return "is required"
    url = url.strip()
    if len(url) > MAX_DESTINATION:
        return f"must be at most {MAX_DESTINATION} characters"
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "must name a host"
    if allow_private:
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return "host does not resolve"
    for info in infos:
        problem = _address_problem(info[4][0])
        if problem:
            return f"{problem}; set WEBHOOK_ALLOW_PRIVATE=true to allow it"
    return None


def webhook_format_problem(fmt) -> str | None:
    """Why `fmt` is not a webhook body format, or None (None/blank means the default)."""
    if fmt in (None, "") or fmt in WEBHOOK_FORMATS:
        return None
    return f"must be one of {', '.join(WEBHOOK_FORMATS)}"


def render_webhook(incident: Incident, *, base_url: str, fmt: str | None,
                   source_name: str | None = None) -> RenderedMessage:
    """The JSON body a webhook receives about `incident`, as text (stored on the notification)."""
    link = incident_url(base_url, incident.id)
    subject = subject_line(incident)
    if (fmt or DEFAULT_FORMAT) == "json":
        body = {"incident_id": incident.id, "title": incident.title, "severity": incident.severity,
                "status": incident.status, "source": source_name,
                "created_at": incident.created_at.isoformat() if incident.created_at else None,
                "links": {"incident": link, "acknowledge": f"{link}#actions"}}
    else:
        body = {"text": f"{subject} ({source_name or 'manual'}): <{link}|open incident #{incident.id}>"}
    return RenderedMessage(subject=subject, body=json.dumps(body, ensure_ascii=False))


def set_team_webhook(session: Session, team: Team, *, url: str | None, fmt: str | None = None,
                     allow_private: bool | None = None) -> Team:
    """Set (or with url None/blank, clear) the team's chat webhook; Invalid names the bad field."""
    errors = {}
    if url not in (None, ""):
        problem = webhook_url_problem(url, allow_private=allow_private)
        if problem:
            errors["webhook_url"] = problem
    if webhook_format_problem(fmt):
        errors["webhook_format"] = webhook_format_problem(fmt)
    if errors:
        raise Invalid("invalid team webhook", fields=errors)
    team.webhook_url = url.strip() if url else None
    team.webhook_format = (fmt or None) if url else None
    session.flush()
    return team


def page_team_webhooks(session: Session, incident: Incident, level: EscalationLevel, *, now: datetime,
                       base_url: str) -> list[tuple[Team, Notification]]:
    """Queue one webhook page per `team_webhook` target of `level` whose team has a webhook.

    One row per (incident, paging pass, round, level, team): a second writer hits the dedup key.
    """
    out = []
    for target in level.targets:
        if target.target_type != "team_webhook":
            continue
        team = session.get(Team, target.team_id)
        if team is None or not team.webhook_url:
            continue
        source = incident.alert_source.name if incident.alert_source is not None else None
        message = render_webhook(incident, base_url=base_url, fmt=team.webhook_format, source_name=source)
        key_round = (f"inc{incident.id}:g{incident.page_generation}:r{incident.escalation_round}"
                     f":l{level.level_number}:t{team.id}")
        row = Notification(
            incident_id=incident.id, user_id=None, channel="webhook", destination=team.webhook_url,
            dedup_key=f"{key_round}:webhook", round_key=key_round, escalation_level=level.level_number,
            subject=message.subject, body=message.body, status="pending", attempts=0, next_attempt_at=now,
            created_at=now, updated_at=now)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            continue  # queued already by someone else
        out.append((team, row))
    return out
