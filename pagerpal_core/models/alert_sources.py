"""Alert sources (one key per monitoring integration) and SNS subscription records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pagerpal_core.db import Base, JSONType, UTCDateTime
from pagerpal_core.timeutil import utcnow

SOURCE_KINDS = ("generic", "grafana", "cloudwatch", "alertmanager", "pagerduty")
# How the CloudWatch/SNS endpoint trusts a message: "verify" its SNS signature as well as
# the key, or "key-only" (the key alone, as before signatures were checked).
SNS_VERIFICATION_MODES = ("verify", "key-only")


class AlertSource(Base):
    """A monitoring integration. Only the SHA-256 of its key and a display suffix are stored."""

    __tablename__ = "alert_sources"
    __table_args__ = (
        CheckConstraint("kind IN ('generic', 'grafana', 'cloudwatch', 'alertmanager', 'pagerduty')",
                        name="kind"),
        CheckConstraint("sns_verification IN ('verify', 'key-only')", name="sns_verification"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="generic")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_suffix: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("escalation_policies.id"), nullable=True,
                                                  index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True, index=True)
    # Source severity (lower-cased) → PagerPal severity (critical/high/warning/info).
    severity_map: Mapped[dict] = mapped_column(JSONType, default=dict)
    # Token bucket for rate limiting; updated atomically in one UPDATE per alert.
    rate_tokens: Mapped[float | None] = mapped_column(Float, nullable=True)
    rate_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_alert_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    key_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Bumped by every change to what ingestion caches per process (key, active, routing, severity
    # map, name): the statement that takes the token checks it, so a cached copy that went out
    # of date is refused on the very next request, not when the cache entry expires.
    config_version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    # New sources verify SNS signatures; rows that existed before signatures were checked get
    # the server default, key-only, so an upgrade never starts refusing a working sender.
    sns_verification: Mapped[str] = mapped_column(String(8), default="verify",
                                                  server_default=text("'key-only'"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def masked_key(self) -> str:
        """The key as shown after creation: the prefix and its last characters only."""
        return f"ppk_…{self.key_suffix}"


@dataclass(frozen=True)
class SourceSnapshot:
    """What ingestion needs of an alert source, read in one query without loading the ORM object."""

    id: int
    name: str
    kind: str
    active: bool
    policy_id: int | None
    team_id: int | None
    severity_map: dict
    key_hash: str
    config_version: int


class SnsSubscription(Base):
    """An SNS SubscriptionConfirmation received by the web; the worker confirms it."""

    __tablename__ = "sns_subscriptions"
    __table_args__ = (
        UniqueConstraint("alert_source_id", "topic_arn", name="uq_sns_subscriptions_source_topic"),
        CheckConstraint("status IN ('pending', 'confirmed', 'failed', 'unsubscribed')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_source_id: Mapped[int] = mapped_column(ForeignKey("alert_sources.id", ondelete="CASCADE"))
    topic_arn: Mapped[str] = mapped_column(String(512))
    subscribe_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    alert_source: Mapped[AlertSource] = relationship()


class SnsSigningCert(Base):
    """An SNS signing certificate URL seen in a signed message, and its PEM once the worker fetched it.

    The web never calls out: it records a URL it has no certificate for ("wanted") and
    answers 503; the worker's chore fetches it from the pinned SNS host and stores it.
    """

    __tablename__ = "sns_signing_certs"
    __table_args__ = (
        CheckConstraint("status IN ('wanted', 'ready', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(1024), unique=True)
    status: Mapped[str] = mapped_column(String(8), default="wanted", index=True)
    pem: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
