"""Escalation policies: ordered levels, each with a delay and one or more targets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pagerpal_core.db import Base, UTCDateTime
from pagerpal_core.timeutil import utcnow

TARGET_TYPES = ("user", "schedule", "team", "team_webhook")


class EscalationPolicy(Base):
    __tablename__ = "escalation_policies"
    __table_args__ = (
        CheckConstraint("repeat_count >= 0", name="repeat_count"),
        CheckConstraint("ack_timeout_minutes IS NULL OR ack_timeout_minutes >= 1", name="ack_timeout_minutes"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(String(1000), default="")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True, index=True)
    # How many times to start again from level 1 after the last level.
    repeat_count: Mapped[int] = mapped_column(Integer, default=0)
    # An acknowledged incident not resolved this many minutes later is triggered again (None: never).
    ack_timeout_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    levels: Mapped[list[EscalationLevel]] = relationship(
        back_populates="policy", cascade="all, delete-orphan", order_by="EscalationLevel.level_number")


class EscalationLevel(Base):
    __tablename__ = "escalation_levels"
    __table_args__ = (
        # Two "level 2"s would make the order ambiguous: the schema refuses them.
        UniqueConstraint("policy_id", "level_number", name="uq_escalation_levels_policy_level"),
        CheckConstraint("level_number >= 1", name="level_number"),
        CheckConstraint("delay_minutes >= 0", name="delay_minutes"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("escalation_policies.id", ondelete="CASCADE"))
    level_number: Mapped[int] = mapped_column(Integer)
    delay_minutes: Mapped[int] = mapped_column(Integer, default=15)

    policy: Mapped[EscalationPolicy] = relationship(back_populates="levels")
    targets: Mapped[list[EscalationTarget]] = relationship(
        back_populates="level", cascade="all, delete-orphan", order_by="EscalationTarget.id")


class EscalationTarget(Base):
    """Exactly one of user, schedule or team, as `target_type` says (`team_webhook`: the team's chat webhook)."""

    __tablename__ = "escalation_targets"
    __table_args__ = (
        CheckConstraint(
            "(target_type = 'user' AND user_id IS NOT NULL AND schedule_id IS NULL AND team_id IS NULL)"
            " OR (target_type = 'schedule' AND schedule_id IS NOT NULL AND user_id IS NULL AND team_id IS NULL)"
            " OR (target_type IN ('team', 'team_webhook') AND team_id IS NOT NULL AND user_id IS NULL"
            " AND schedule_id IS NULL)",
            name="one_target"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level_id: Mapped[int] = mapped_column(ForeignKey("escalation_levels.id", ondelete="CASCADE"), index=True)
    target_type: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("schedules.id"), nullable=True, index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True, index=True)

    level: Mapped[EscalationLevel] = relationship(back_populates="targets")
