"""Notifications: the outbox the worker dispatches from, and the delivery log people read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pagerpal_core.db import Base, UTCDateTime
from pagerpal_core.timeutil import utcnow

NOTIFICATION_STATUSES = (
    "pending",        # waiting for its next attempt time
    "sending",        # claimed by a worker under a lease
    "sent",           # the provider accepted it
    "suppressed",     # sending disabled: recorded, nobody called
    "delivered",      # receipt: reached the handset/mailbox
    "undeliverable",  # receipt: the provider gave up
    "failed",         # last attempt failed; will not retry on its own (manual retry)
    "exhausted",      # out of attempts or a permanent provider error
    "cancelled",      # the incident was acknowledged/resolved before sending
)
RETRYABLE_BY_HAND = ("failed", "exhausted", "undeliverable")


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'suppressed', 'delivered', 'undeliverable',"
                        " 'failed', 'exhausted', 'cancelled')", name="status"),
        CheckConstraint("channel IN ('sms', 'whatsapp', 'email')", name="channel"),
        # The dispatch query: due pending rows in time order. Partial, so it stays tiny.
        Index("ix_notifications_due", "next_attempt_at", sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
        # Lease recovery: rows stuck in 'sending' past their lease.
        Index("ix_notifications_lease", "lease_expires_at", sqlite_where=text("status = 'sending'"),
              postgresql_where=text("status = 'sending'")),
        Index("ix_notifications_incident", "incident_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"),
                                                    nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    channel: Mapped[str] = mapped_column(String(16))
    destination: Mapped[str] = mapped_column(String(254))
    # One page per (incident, paging pass, level, user, channel): a second writer of the same
    # page hits this unique key instead of queuing a duplicate.
    dedup_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    escalation_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    subject: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")

    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    leased_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    provider_status: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    incident = relationship("Incident")
    user = relationship("User")
