"""Maintenance windows: spans of time in which alerts are recorded but nobody is paged."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pagerpal_core.db import Base, UTCDateTime
from pagerpal_core.timeutil import utcnow


class MaintenanceWindow(Base):
    """From `starts_at` to `ends_at` (or `ended_at`, when ended early), the covered sources and
    policies page nobody. A window covers the incidents of its alert sources and of its policies."""

    __tablename__ = "maintenance_windows"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="span"),
        # "Which windows are active now" reads by end time (see services/maintenance.py).
        Index("ix_maintenance_windows_ends_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(String(500))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the window is ended early (or cancelled before it began); it is over from then on.
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    created_by = relationship("User")
    sources = relationship("AlertSource", secondary="maintenance_window_sources", order_by="AlertSource.id",
                           viewonly=True)
    policies = relationship("EscalationPolicy", secondary="maintenance_window_policies",
                            order_by="EscalationPolicy.id", viewonly=True)

    @property
    def effective_end(self) -> datetime:
        """When the window stops covering anything: its end, or the moment it was ended early."""
        return min(self.ends_at, self.ended_at) if self.ended_at is not None else self.ends_at

    def state(self, now: datetime) -> str:
        """"scheduled", "active" or "over" at `now`."""
        if self.effective_end <= now:
            return "over"
        return "active" if self.starts_at <= now else "scheduled"


class MaintenanceWindowSource(Base):
    """An alert source a window covers."""

    __tablename__ = "maintenance_window_sources"

    window_id: Mapped[int] = mapped_column(ForeignKey("maintenance_windows.id", ondelete="CASCADE"),
                                           primary_key=True)
    alert_source_id: Mapped[int] = mapped_column(ForeignKey("alert_sources.id", ondelete="CASCADE"),
                                                 primary_key=True, index=True)


class MaintenanceWindowPolicy(Base):
    """An escalation policy a window covers."""

    __tablename__ = "maintenance_window_policies"

    window_id: Mapped[int] = mapped_column(ForeignKey("maintenance_windows.id", ondelete="CASCADE"),
                                           primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("escalation_policies.id", ondelete="CASCADE"),
                                           primary_key=True, index=True)


class MaintenanceHold(Base):
    """An open incident whose paging waits for a window to end (at most one hold per incident).

    The worker's maintenance step releases holds whose window is over (or was deleted: the
    window id becomes NULL) and starts paging the incident if it is still triggered.
    """

    __tablename__ = "maintenance_holds"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    window_id: Mapped[int | None] = mapped_column(ForeignKey("maintenance_windows.id", ondelete="SET NULL"),
                                                  nullable=True, index=True)
    held_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    window = relationship("MaintenanceWindow")
