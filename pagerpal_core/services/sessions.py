"""Server-side browser sessions: started at sign-in, checked on every request, ended at sign-out.

The signed session cookie alone would stay valid wherever it is copied until it expires;
with a row per session the server decides. The cookie carries a random token and the row
only its SHA-256, so reading the table does not yield usable sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from pagerpal_core.models import User, UserSession
from pagerpal_core.services.audit import record_audit

# last_seen_at is written at most this often per session: idle timeouts are counted in
# minutes and hours, and a write on every page view would cost more than it tells.
TOUCH_EVERY = timedelta(seconds=60)


def token_hash(token: str) -> str:
    """The stored form of a session token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def start_session(session: Session, user: User, *, now: datetime, idle: timedelta) -> str:
    """Open a session for `user`; returns the token for the cookie. Also drops idle sessions. Flushes."""
    token = secrets.token_urlsafe(32)
    session.add(UserSession(token_hash=token_hash(token), user_id=user.id, created_at=now, last_seen_at=now))
    session.execute(delete(UserSession).where(UserSession.last_seen_at <= now - idle)
                    .execution_options(synchronize_session=False))
    session.flush()
    return token


def check_session(session: Session, user_id: int, token: str | None, *, now: datetime,
                  idle: timedelta) -> bool:
    """True when `token` is a live session of `user_id` (not signed out, not idle too long).

    A live session's last-seen time is moved forward (flushed, at most every TOUCH_EVERY).
    """
    if not isinstance(token, str) or not token:
        return False
    row = session.get(UserSession, token_hash(token))
    if row is None or row.user_id != user_id or row.last_seen_at + idle <= now:
        return False
    if row.last_seen_at + TOUCH_EVERY <= now:
        # Only forward, in one statement: two requests of one session at once never move it back.
        session.execute(update(UserSession).where(UserSession.token_hash == row.token_hash,
                                                  UserSession.last_seen_at < now)
                        .values(last_seen_at=now).execution_options(synchronize_session=False))
        set_committed_value(row, "last_seen_at", now)
    return True


def end_session(session: Session, token: str | None) -> None:
    """Sign a session out on the server: its cookie, wherever copied, stops working. Flushes.

    Signing out a live session writes an audit row for its user.
    """
    if isinstance(token, str) and token:
        row = session.get(UserSession, token_hash(token))
        session.execute(delete(UserSession).where(UserSession.token_hash == token_hash(token))
                        .execution_options(synchronize_session=False))
        session.flush()
        if row is not None:
            record_audit(session, action="auth.signed_out", object_type="user", object_id=row.user_id,
                         actor=row.user_id)

