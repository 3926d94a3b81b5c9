"""Notifications: the outbox the worker dispatches from, and the delivery log people read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
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
    "bundled",        # folded into a summary message to the same destination (see bundle_id)
)
NOTIFICATION_KINDS = (
    "page",           # a page for an incident
    "summary",        # one message standing for the pages folded into it (bundling)
    "test",           # "Send test" on a contact method
)
FAILOVER_DUE = "failed_over_at IS NULL AND status IN ('undeliverable', 'exhausted', 'failed')"
UNCONFIRMED = "failed_over_at IS NULL AND status = 'sent' AND channel IN ('sms', 'whatsapp')"
# The most a personal notification rule may wait: a day. Longer is a mistake, not a rule.
MAX_RULE_DELAY_MINUTES = 1440
RETRYABLE_BY_HAND = ("failed", "exhausted", "undeliverable")


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'suppressed', 'delivered', 'undeliverable',"
                        " 'failed', 'exhausted', 'cancelled', 'bundled')", name="status"),
        CheckConstraint("kind IN ('page', 'summary', 'test')", name="kind"),
        CheckConstraint("channel IN ('sms', 'whatsapp', 'email', 'webhook')", name="channel"),
        # The dispatch query: due pending rows in time order. Partial, so it stays tiny.
        Index("ix_notifications_due", "next_attempt_at", sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
        # Lease recovery: rows stuck in 'sending' past their lease.
        Index("ix_notifications_lease", "lease_expires_at", sqlite_where=text("status = 'sending'"),
              postgresql_where=text("status = 'sending'")),
        Index("ix_notifications_incident", "incident_id", "id"),
        # Bundling counts recent messages per destination.
        Index("ix_notifications_destination_recent", "destination", "first_attempt_at"),
        # Failover: pages that ended failed and have not yet paged the next contact method,
        # and sent phone pages still waiting for a delivered receipt. Partial: both stay small.
        Index("ix_notifications_failover_due", "id", sqlite_where=text(FAILOVER_DUE),
              postgresql_where=text(FAILOVER_DUE)),
        Index("ix_notifications_unconfirmed", "sent_at", sqlite_where=text(UNCONFIRMED),
              postgresql_where=text(UNCONFIRMED)),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"),
                                                    nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    channel: Mapped[str] = mapped_column(String(16))
    destination: Mapped[str] = mapped_column(String(2000))  # a webhook URL is the longest
    # One page per (incident, paging pass, level, user, channel): a second writer of the same
    # page hits this unique key instead of queuing a duplicate.
    dedup_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    escalation_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The contact method this page went to (failover picks the user's next one) and the page
    # round it belongs to: `inc…:g…:r…:l…:u…`, the dedup key without its channel part.
    contact_method_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact_methods.id", ondelete="SET NULL"), nullable=True, index=True)
    round_key: Mapped[str | None] = mapped_column(String(160), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(16), default="page", server_default="page")
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
    # Retries stop NOTIFICATION_RETRY_WINDOW_SECONDS after this (set when first claimed).
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Set once this page's failure has paged the user's next contact method (never twice).
    failed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A `bundled` page points at the summary message that carried it.
    bundle_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("notifications.id", ondelete="SET NULL"),
        nullable=True, index=True)

    incident = relationship("Incident")
    user = relationship("User")


class NotificationRule(Base):
    """One personal notification rule: page `contact_method` `delay_minutes` after the user is paged.

    A user's rules, ordered by `position`, are also the order failover walks. A user without
    rules is paged on every enabled contact method at once.
    """

    __tablename__ = "notification_rules"
    __table_args__ = (
        UniqueConstraint("user_id", "contact_method_id", name="uq_notification_rules_user_method"),
        CheckConstraint(f"delay_minutes >= 0 AND delay_minutes <= {MAX_RULE_DELAY_MINUTES}", name="delay"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    contact_method_id: Mapped[int] = mapped_column(ForeignKey("contact_methods.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    delay_minutes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    contact_method = relationship("ContactMethod")


class ProviderPause(Base):
    """A provider that asked us to wait (429 Retry-After): no send to it before `paused_until`."""

    __tablename__ = "provider_pauses"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    paused_until: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
