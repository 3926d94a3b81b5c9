"""Schedules and their three layers: overrides, entries, rotations."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from pagerpal_core.db import Base, UTCDateTime
from pagerpal_core.timeutil import utcnow


class Schedule(Base):
    """An on-call schedule in one IANA time zone, optionally owned by a team."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(String(1000), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    entries: Mapped[list[ScheduleEntry]] = relationship(
        back_populates="schedule", cascade="all, delete-orphan", order_by="ScheduleEntry.starts_at")
    overrides: Mapped[list[ScheduleOverride]] = relationship(
        back_populates="schedule", cascade="all, delete-orphan", order_by="ScheduleOverride.starts_at")
    rotations: Mapped[list[Rotation]] = relationship(
        back_populates="schedule", cascade="all, delete-orphan", order_by="Rotation.id")


class ShiftWindowMixin:
    """What entries and overrides share: one person covers a schedule from `starts_at` to `ends_at`."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> tuple:
        # The window index serves the on-call lookup "which rows of this schedule cover t".
        return (CheckConstraint("ends_at > starts_at", name="positive_length"),
                Index(f"ix_{cls.__tablename__}_schedule_window", "schedule_id", "starts_at", "ends_at"))


class ScheduleEntry(ShiftWindowMixin, Base):
    """An explicit shift. Entries of one schedule never overlap (checked by the service)."""

    __tablename__ = "schedule_entries"

    schedule: Mapped[Schedule] = relationship(back_populates="entries")


class ScheduleOverride(ShiftWindowMixin, Base):
    """Temporary coverage that wins over everything; the newest override wins among overrides."""

    __tablename__ = "schedule_overrides"

    reason: Mapped[str] = mapped_column(String(500), default="")

    schedule: Mapped[Schedule] = relationship(back_populates="overrides")


class Rotation(Base):
    """Participants take turns: each shift lasts `shift_length` `shift_unit`s from the handoff."""

    __tablename__ = "rotations"
    __table_args__ = (
        CheckConstraint("shift_unit IN ('hours', 'days', 'weeks')", name="shift_unit"),
        CheckConstraint("shift_length > 0", name="shift_length"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    shift_length: Mapped[int] = mapped_column(Integer, default=1)
    shift_unit: Mapped[str] = mapped_column(String(8), default="weeks")
    handoff_time: Mapped[str] = mapped_column(String(5), default="09:00")  # HH:MM in the schedule's zone
    start_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    schedule: Mapped[Schedule] = relationship(back_populates="rotations")
    participants: Mapped[list[RotationParticipant]] = relationship(
        back_populates="rotation", cascade="all, delete-orphan", order_by="RotationParticipant.position")


class RotationParticipant(Base):
    """One person's place in a rotation's turn order (positions are unique per rotation)."""

    __tablename__ = "rotation_participants"
    __table_args__ = (UniqueConstraint("rotation_id", "position", name="uq_rotation_participants_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rotation_id: Mapped[int] = mapped_column(ForeignKey("rotations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)

    rotation: Mapped[Rotation] = relationship(back_populates="participants")
