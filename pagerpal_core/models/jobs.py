"""Worker job heartbeats, sign-in throttling, browser sessions, and small named application state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pagerpal_core.db import Base, JSONType, UTCDateTime
from pagerpal_core.timeutil import utcnow


class JobStatus(Base):
    """One row per worker step: is it enabled, who leads, when it last ran and how it went."""

    __tablename__ = "job_status"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    interval_seconds: Mapped[float] = mapped_column(Float, default=1.0)
    leader_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    leader_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    run_count: Mapped[int] = mapped_column(Integer, default=0)
    last_duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Standby instances seen recently: {"host:pid": iso-timestamp}.
    standby_instances: Mapped[dict] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AuthThrottle(Base):
    """A failed sign-in counter, shared by every web process through the database.

    One row per (client address, account) and one per account; the key is a hash of them
    (see services/signin.py), so arbitrary submitted emails never reach the table verbatim.
    """

    __tablename__ = "auth_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # When the current run of failures began (the row's creation when there is none).
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # (address, account) rows only: a recent success makes the pair "known", so an attack on the
    # account from elsewhere does not lock its owner out here.
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UserSession(Base):
    """One signed-in browser session. The cookie carries a random token; the row keeps its SHA-256.

    Signing out deletes the row, so a copied cookie stops working at once; a session idle for
    longer than SESSION_IDLE_MINUTES is refused.
    """

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AppState(Base):
    """Named one-off facts, e.g. the first-run bootstrap claim (its primary key is the guard)."""

    __tablename__ = "app_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
