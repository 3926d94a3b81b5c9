"""Signed action links: `/a/<token>` in every page acts on its incident as the paged user.

A link is a random token (128 bits, 22 URL-safe characters) minted when the page's outbox
row is written. Only HMAC-SHA256(token) under a key derived from SECRET_KEY is stored, and
a token is looked up by that hash (a unique index): the database never holds a usable
token, lookups compare hashes rather than secrets, and rotating SECRET_KEY voids every link.

Rules (`load_link`, `perform_link_action`):
- a link acts only on the incident it was minted for, as the user it paged;
- it stops working when it expires (ACTION_LINK_TTL_SECONDS), when its user is
  deactivated (or can no longer act: viewers), or when SECRET_KEY changes;
- looking at a link never changes anything (mail scanners and chat unfurlers fetch
  links); only `perform_link_action` does, and repeating an action is harmless: the second
  time answers "already acknowledged by X at T" and writes nothing;
- unknown tokens count against the client address (`record_miss`), so guessing is slow
  as well as hopeless.

The signing material reaches paging (which only gets a session) through `configure_links`:
the web app and the worker register their settings for their engine; a session on an
engine nobody registered (a script) falls back to the environment's settings.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from pagerpal_core.errors import Conflict, DomainError, NotFound, RateLimited
from pagerpal_core.models import ActionLink, Incident, IncidentEvent, Notification, User
from pagerpal_core.models.action_links import LINK_ACTIONS
from pagerpal_core.services import hit_counters

log = logging.getLogger(__name__)

TOKEN_BYTES = 16                       # 128 bits → 22 URL-safe characters
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# Guessing: more than MAX_MISSES unknown tokens from one address within MISS_WINDOW_SECONDS
# block that address for BLOCK_SECONDS. A real responder never mistypes a link that often.
MAX_MISSES = 20
MISS_WINDOW_SECONDS = 15 * 60
BLOCK_SECONDS = 300
CHANNEL_LABELS = {"sms": "SMS", "whatsapp": "WhatsApp", "email": "email"}
ACTION_VERBS = {"ack": "acknowledged", "resolve": "resolved", "escalate": "escalated", "snooze": "snoozed"}
ACTION_ALIASES = {"ack": "ack", "acknowledge": "ack", "resolve": "resolve", "res": "resolve",
                  "escalate": "escalate", "esc": "escalate"}


class LinkGone(DomainError):
    """The link existed but no longer works (expired, or its user cannot act any more)."""

    code, status = "link_gone", 410


# --- signing material ---------------------------------------------------------------------

@dataclass(frozen=True)
class LinkSigning:
    """The key links are hashed with (derived from SECRET_KEY) and how long they live."""

    key: bytes
    ttl_seconds: int

    @classmethod
    def from_settings(cls, settings) -> LinkSigning:
        """Derive the link key from SECRET_KEY: changing the secret voids every link."""
        key = hmac.new(settings.secret_key.encode("utf-8"), b"pagerpal action links v1", hashlib.sha256).digest()
        return cls(key=key, ttl_seconds=int(settings.action_link_ttl_seconds))

    def token_hash(self, token: str) -> str:
        """The stored form of `token`: hex HMAC-SHA256 under the link key."""
        return hmac.new(self.key, token.encode("utf-8"), hashlib.sha256).hexdigest()

    def form_token(self, token: str) -> str:
        """The CSRF value of the confirm form, bound to this link (and to SECRET_KEY)."""
        return hmac.new(self.key, b"form:" + token.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def form_token_ok(self, token: str, given: str | None) -> bool:
        """Constant-time check of a submitted form token."""
        return isinstance(given, str) and hmac.compare_digest(self.form_token(token).encode(),
                                                              given.encode("utf-8", "replace"))


_BY_ENGINE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def configure_links(engine, settings) -> None:
    """Register `settings`' link key and TTL for pages written through `engine`."""
    _BY_ENGINE[engine] = LinkSigning.from_settings(settings)


@lru_cache(maxsize=1)
def _environment_signing() -> LinkSigning | None:
    from pagerpal_core.settings import ConfigError, Settings

    try:
        return LinkSigning.from_settings(Settings.from_env())
    except ConfigError:
        return None


def signing_for(session: Session) -> LinkSigning | None:
    """The link signing of the app or worker that owns `session`'s engine (None: no links)."""
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    found = _BY_ENGINE.get(engine)
    return found if found is not None else _environment_signing()


# --- minting ------------------------------------------------------------------------------

def new_token() -> str:
    """A fresh link token: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def create_action_link(session: Session, *, token: str, signing: LinkSigning, incident: Incident, user: User,
                       channel: str, now: datetime, notification: Notification | None = None) -> ActionLink:
    """Store the link for `token` (its hash only), valid for the signing's TTL; flushed."""
    link = ActionLink(token_hash=signing.token_hash(token), incident_id=incident.id, user_id=user.id,
                      notification_id=notification.id if notification is not None else None, channel=channel,
                      expires_at=now + timedelta(seconds=signing.ttl_seconds), created_at=now)
    session.add(link)
    session.flush()
    return link


# --- looking a link up (never writes) ------------------------------------------------------

def find_link(session: Session, token: str, *, signing: LinkSigning) -> ActionLink | None:
    """The link `token` names, or None. A malformed token is not looked up at all."""
    if not isinstance(token, str) or not TOKEN_RE.match(token):
        return None
    return session.scalar(select(ActionLink).where(ActionLink.token_hash == signing.token_hash(token)))


def load_link(session: Session, token: str, *, signing: LinkSigning, now: datetime) -> ActionLink:
    """The working link for `token`: NotFound (unknown, or minted under another SECRET_KEY),
    LinkGone (expired, user deactivated or no longer allowed to act). Changes nothing."""
    link = find_link(session, token, signing=signing)
    if link is None:
        raise NotFound("This link is unknown or no longer valid.")
    if link.expires_at <= now:
        raise LinkGone("This link has expired.")
    user = link.user
    if user is None or not user.active or user.role == "viewer":
        raise LinkGone("This link no longer works: its user cannot act on incidents any more.")
    return link


def check_address(session: Session, address: str, *, now: datetime) -> None:
    """RateLimited when `address` has tried too many unknown tokens lately."""
    wait = hit_counters.blocked_for(session, _throttle_key(address), now=now)
    if wait:
        raise RateLimited(f"Too many unknown links from this address; try again in {wait} s.", retry_after=wait)


def record_miss(session: Session, address: str, *, now: datetime) -> int:
    """Count an unknown token against `address`; returns the block it triggered (seconds, 0 = none)."""
    return hit_counters.count_hit(session, _throttle_key(address), now=now, limit=MAX_MISSES,
                                  window_seconds=MISS_WINDOW_SECONDS, block_seconds=BLOCK_SECONDS)


def _throttle_key(address: str) -> str:
    return f"action-link:{address or 'unknown'}"


# --- acting ----------------------------------------------------------------------------------

@dataclass
class ActionOutcome:
    """What one action did: `changed` False means it had already happened (nothing written)."""

    incident: Incident
    user: User
    action: str
    changed: bool
    message: str


def via_label(channel: str, kind: str) -> str:
    """How the channel reads on the timeline: "SMS link", "WhatsApp reply", "email link"."""
    return f"{CHANNEL_LABELS.get(channel, channel)} {kind}"


def last_event(session: Session, incident: Incident, kind: str) -> IncidentEvent | None:
    """The newest `kind` event of `incident` (who acknowledged it, and when)."""
    return session.scalar(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id,
                                                      IncidentEvent.kind == kind)
                          .order_by(IncidentEvent.id.desc()).limit(1))


def already_message(session: Session, incident: Incident, kind: str) -> str:
    """ "already acknowledged by Ada Lovelace at 2026-03-01 03:12 UTC" (as far as the timeline says)."""
    event = last_event(session, incident, kind)
    if event is None:
        return f"already {kind}"
    return f"already {kind} by {event.actor_label} at {event.created_at:%Y-%m-%d %H:%M} UTC"


def act_as(session: Session, incident: Incident, user: User, action: str, *, via: str, now: datetime,
           base_url: str, minutes: int | None = None) -> ActionOutcome:
    """Perform `action` (ack, resolve, escalate, snooze) on `incident` as `user`, through the
    incident services, recording `via` on the timeline.

    An action that already happened (acknowledging an acknowledged incident, resolving a
    resolved one) is not an error: the outcome says so and nothing is written. Other
    refusals (escalating a resolved incident, no policy to escalate to) raise Conflict.
    """
    # Imported here: paging imports this module to mint links, and the incident services
    # import paging, so a module-level import would be circular.
    from pagerpal_core.services import incidents as incident_actions

    title = f"#{incident.id} {incident.title}"
    if action == "ack":
        if incident.status != "triggered":
            return _already(session, incident, user, action)
        try:
            incident_actions.acknowledge_incident(session, incident, actor=user, now=now, via=via)
        except Conflict:  # changed under us: someone acknowledged or resolved it meanwhile
            return _already(session, incident, user, action)
        return ActionOutcome(incident, user, action, True, f"Acknowledged {title}")
    if action == "resolve":
        if incident.status == "resolved":
            return _already(session, incident, user, action)
        try:
            incident_actions.resolve_incident(session, incident, actor=user, now=now, via=via)
        except Conflict:
            return _already(session, incident, user, action)
        return ActionOutcome(incident, user, action, True, f"Resolved {title}")
    if action == "escalate":
        if incident.status == "resolved":
            return _already(session, incident, user, action)
        incident_actions.escalate_incident(session, incident, actor=user, now=now, base_url=base_url, via=via)
        return ActionOutcome(incident, user, action, True,
                             f"Escalated {title} to level {incident.current_level}")
    if action == "snooze":
        if incident.status == "resolved":
            return _already(session, incident, user, action)
        incident_actions.snooze_incident(session, incident, minutes=minutes, actor=user, now=now, via=via)
        until = now + timedelta(minutes=minutes or 0)
        return ActionOutcome(incident, user, action, True, f"Snoozed {title} until {until:%H:%M} UTC")
    raise Conflict(f"unknown action {action!r}")


def _already(session: Session, incident: Incident, user: User, action: str) -> ActionOutcome:
    # A resolved incident reports its resolution whatever was asked; otherwise the state asked for.
    kind = "resolved" if incident.status == "resolved" else ACTION_VERBS.get(action, "acknowledged")
    if kind == "snoozed":
        kind = "acknowledged"
    return ActionOutcome(incident, user, action, False,
                         f"#{incident.id} {incident.title} was {already_message(session, incident, kind)}")


def perform_link_action(session: Session, token: str, action: str, *, signing: LinkSigning, now: datetime,
                        base_url: str, incident_id: int | None = None) -> ActionOutcome:
    """Act through a link: ack, resolve or escalate its own incident as its user.

    `incident_id`, when given (the confirm form sends it), must be the link's incident, so
    a form for incident A can never act on B. Raises NotFound/LinkGone like `load_link`,
    Conflict for an unknown action or an escalation that cannot happen. The caller commits.
    """
    action = ACTION_ALIASES.get(str(action or "").lower(), "")
    if action not in LINK_ACTIONS:
        raise Conflict("Choose Acknowledge, Resolve or Escalate.")
    link = load_link(session, token, signing=signing, now=now)
    if incident_id is not None and incident_id != link.incident_id:
        raise NotFound("This link belongs to a different incident.")
    incident = session.get(Incident, link.incident_id)
    if incident is None:
        raise NotFound("This link's incident no longer exists.")
    # Escalating twice from one link would page one more level per double tap: once is enough
    # until someone acknowledges (which lets the link escalate again).
    if action == "escalate" and link.used_action == "escalate" and incident.status == "triggered":
        return ActionOutcome(incident, link.user, action, False,
                             f"#{incident.id} {incident.title} was already escalated from this link at "
                             f"{link.used_at:%Y-%m-%d %H:%M} UTC")
    outcome = act_as(session, incident, link.user, action, via=via_label(link.channel, "link"), now=now,
                     base_url=base_url)
    if outcome.changed:
        link.used_at, link.used_action = now, action
        session.flush()
    return outcome
