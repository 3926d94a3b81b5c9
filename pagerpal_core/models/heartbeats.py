"""Heartbeat monitors: dead-man's switches that page when an expected ping does not arrive."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pagerpal_core.db import Base, UTCDateTime
from pagerpal_core.timeutil import utcnow

# new: never pinged (nothing is expected yet); up: pinging on time; down: a ping is overdue and
# the monitor's incident was opened. Only `up` monitors are checked, so a monitor opens at most
# one incident per silence: the state change up → down is the guard.
HEARTBEAT_STATES = ("new", "up", "down")


class HeartbeatMonitor(Base):
    """A named job that promises to ping every `interval_seconds`; only its token's SHA-256 is kept."""

    __tablename__ = "heartbeat_monitors"
    __table_args__ = (
        CheckConstraint("state IN ('new', 'up', 'down')", name="state"),
        # The worker's "overdue monitors" query reads only `up` rows by deadline.
        Index("ix_heartbeat_monitors_overdue", "expected_by",
              sqlite_where=text("state = 'up'"), postgresql_where=text("state = 'up'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    grace_seconds: Mapped[int] = mapped_column(Integer, default=0)
    policy_id: Mapped[int] = mapped_column(ForeignKey("escalation_policies.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_suffix: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(8), default="new")
    last_ping_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # last_ping_at + interval + grace while up: the instant the worker declares it missed.
    expected_by: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    down_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ping_count: Mapped[int] = mapped_column(Integer, default=0)
    # The incident the current silence opened (kept after it resolves, for the UI's link).
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"),
                                                    nullable=True)
    # Per-monitor token bucket for pings (see services/heartbeats.py).
    rate_tokens: Mapped[float | None] = mapped_column(Float, nullable=True)
    rate_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    policy = relationship("EscalationPolicy")
    incident = relationship("Incident")
