"""Acting on a page from the page itself: signed action links, reply codes, inbound replies.

- `ActionLink`: one per page (outbox row). Only a keyed hash of its token is stored, so
  a database dump does not hand out working links, and rotating SECRET_KEY voids them all.
- `ReplyCode`: the short number in "Reply 4821 ACK"; unique among one person's open pages,
  so "4821" names exactly one incident for that person. Released once the incident closes.
- `InboundMessage`: the provider message ids of replies already handled, so a replayed
  forward changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pagerpal_core.db import Base, UTCDateTime
from pagerpal_core.timeutil import utcnow

LINK_ACTIONS = ("ack", "resolve", "escalate")


class ActionLink(Base):
    """A page's signed link `/a/<token>`: acts on its incident as the paged user until it expires."""

    __tablename__ = "action_links"
    __table_args__ = (
        CheckConstraint("used_action IS NULL OR used_action IN ('ack', 'resolve', 'escalate')",
                        name="used_action"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # HMAC-SHA256 of the token under a key derived from SECRET_KEY (hex). Looking a token up
    # by this unique column compares hashes, never the secret itself.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    notification_id: Mapped[int | None] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), nullable=True, index=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    used_action: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    incident = relationship("Incident")
    user = relationship("User")


# An active code is one not yet released; the predicate is repeated by the partial indexes.
ACTIVE_CODE_PREDICATE = "released_at IS NULL"


class ReplyCode(Base):
    """The number a person replies with ("4821 ACK") to act on one incident."""

    __tablename__ = "reply_codes"
    __table_args__ = (
        # Uniqueness lives in the schema: among one person's active codes, a number names
        # one incident, and an incident has one number for that person.
        Index("uq_reply_codes_user_code", "user_id", "code", unique=True,
              sqlite_where=text(ACTIVE_CODE_PREDICATE), postgresql_where=text(ACTIVE_CODE_PREDICATE)),
        Index("uq_reply_codes_user_incident", "user_id", "incident_id", unique=True,
              sqlite_where=text(ACTIVE_CODE_PREDICATE), postgresql_where=text(ACTIVE_CODE_PREDICATE)),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(6))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    incident = relationship("Incident")


class InboundMessage(Base):
    """A reply (SMS or WhatsApp) from a known number, recorded once per provider message id."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        CheckConstraint("channel IN ('sms', 'whatsapp')", name="channel"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # The provider's id: the unique key that turns a replayed forward into a no-op.
    provider_message_id: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(500), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True,
                                                index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"),
                                                    nullable=True)
    outcome: Mapped[str] = mapped_column(String(40), default="")
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
