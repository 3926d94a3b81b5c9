"""Secret calendar feed URLs: `/calendar/<token>.ics`, a user's shifts without a session.

Calendar apps (Google Calendar, Outlook, Apple Calendar) subscribe to a URL and fetch it
unattended, so they cannot sign in. Each user may have one feed token: `ppc_` + 32 random
bytes, stored like alert source keys — only its SHA-256 and a four-character suffix —
so the full URL is shown once, when it is created. Creating it again replaces the old
token (the old URL stops working at the commit); revoking deletes it. A token of a
deactivated user opens nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagerpal_core.models import CalendarFeedToken, User
from pagerpal_core.security import sha256_hex
from pagerpal_core.services.address_limits import AddressLimiter
from pagerpal_core.services.audit import record_audit

TOKEN_PREFIX = "ppc_"
TOKEN_BYTES = 32
SUFFIX_LENGTH = 4
MAX_TOKEN_LENGTH = 100

# Feed fetches per client address and process: a burst of 30, then one every 5 s. Calendar
# apps poll a feed every few minutes at most; guessing a 256-bit token is hopeless anyway,
# this only keeps a flood of fetches (each renders eight weeks of shifts) off the database.
FEED_BURST = 30
FEED_PER_SECOND = 0.2


def new_feed_limiter() -> AddressLimiter:
    """The per-address limiter for feed fetches (one per app, kept by the web)."""
    return AddressLimiter(capacity=FEED_BURST, refill_per_second=FEED_PER_SECOND)


@dataclass
class IssuedFeedToken:
    """A feed token row with its full token, returned only when it is created."""

    feed: CalendarFeedToken
    token: str


def _audit_values(feed: CalendarFeedToken) -> dict:
    # token_hash is masked by the audit log; it shows that the token changed, never its value.
    return {"user_id": feed.user_id, "token_hash": feed.token_hash, "token_suffix": feed.token_suffix}


def get_calendar_feed(session: Session, user: User) -> CalendarFeedToken | None:
    """The user's feed token row (hash and suffix only), or None when there is none."""
    return session.scalar(select(CalendarFeedToken).where(CalendarFeedToken.user_id == user.id))


def issue_calendar_feed_token(session: Session, user: User, *, now: datetime) -> IssuedFeedToken:
    """Create the user's feed token, or replace it (the old URL stops working at the commit)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    values = dict(token_hash=sha256_hex(token), token_suffix=token[-SUFFIX_LENGTH:], created_at=now)
    feed = get_calendar_feed(session, user)
    before = _audit_values(feed) if feed is not None else None
    if feed is None:
        feed = CalendarFeedToken(user_id=user.id, **values)
        try:
            with session.begin_nested():
                session.add(feed)
                session.flush()
        except IntegrityError:  # created by a concurrent request: replace that one instead
            feed = session.scalars(select(CalendarFeedToken).where(CalendarFeedToken.user_id == user.id)
                                   .with_for_update().execution_options(populate_existing=True)).one()
            before = _audit_values(feed)
    for attr, value in values.items():
        setattr(feed, attr, value)
    session.flush()
    record_audit(session, action="calendar_feed.regenerated" if before else "calendar_feed.created",
                 object_type="calendar_feed", object_id=user.id, before=before, after=_audit_values(feed),
                 now=now)
    return IssuedFeedToken(feed=feed, token=token)


def revoke_calendar_feed_token(session: Session, user: User, *, now: datetime) -> bool:
    """Delete the user's feed token; True when there was one (its URL stops working at the commit)."""
    feed = get_calendar_feed(session, user)
    if feed is None:
        return False
    before = _audit_values(feed)
    session.execute(delete(CalendarFeedToken).where(CalendarFeedToken.id == feed.id)
                    .execution_options(synchronize_session=False))
    session.expunge(feed)
    record_audit(session, action="calendar_feed.revoked", object_type="calendar_feed", object_id=user.id,
                 before=before, after=None, now=now)
    return True


def calendar_feed_user(session: Session, token) -> User | None:
    """The active user whose feed `token` is, or None. Reads only.

    Looked up by the token's SHA-256 on a unique index (never compared character by
    character), and only when it is well formed.
    """
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None
    user = session.scalar(select(User).join(CalendarFeedToken, CalendarFeedToken.user_id == User.id)
                          .where(CalendarFeedToken.token_hash == sha256_hex(token)))
    if user is None or not user.active:
        return None
    return user
