"""Worker job heartbeats, login throttling, and small named application state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Integer, String
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
    """Failed sign-ins per client key, shared by every web process through the database."""

    __tablename__ = "auth_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AppState(Base):
    """Named one-off facts, e.g. the first-run bootstrap claim (its primary key is the guard)."""

    __tablename__ = "app_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
