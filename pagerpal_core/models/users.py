"""People: users (accounts and responder identities), their contact methods, teams."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pagerpal_core.db import Base, UTCDateTime
from pagerpal_core.timeutil import utcnow

ROLES = ("admin", "responder", "viewer")
CHANNELS = ("sms", "whatsapp", "email", "webhook")
# How a webhook body is shaped: Slack/Mattermost `{"text": ...}`, or the incident as generic JSON.
WEBHOOK_FORMATS = ("slack", "json")
# A webhook destination is a URL; phones and mailboxes stay far below this.
MAX_DESTINATION = 2000


class User(Base):
    """A person. Without a password hash it is a responder identity that cannot log in."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'responder', 'viewer')", name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="responder")
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Bumped whenever the password or role changes: invalidates sessions and auth caches.
    auth_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    contact_methods: Mapped[list[ContactMethod]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="ContactMethod.id")

    # Flask-Login reads these attributes; they are plain Python, no Flask import here.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        """Flask-Login's question: only active users keep a session."""
        return bool(self.active)

    @property
    def can_log_in(self) -> bool:
        """True for an active user with a password (responder identities without one cannot sign in)."""
        return bool(self.active and self.password_hash)

    def get_id(self) -> str:
        """Session id: changing the password or role logs out existing sessions."""
        return f"{self.id}:{self.auth_version}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


# Emails are unique regardless of case: the index is on lower(email).
Index("uq_users_email_lower", func.lower(User.email), unique=True)


class ContactMethod(Base):
    """One way to reach a user: a channel, its destination and an on/off switch."""

    __tablename__ = "contact_methods"
    __table_args__ = (
        UniqueConstraint("user_id", "channel", "destination", name="uq_contact_methods_user_channel_dest"),
        CheckConstraint("channel IN ('sms', 'whatsapp', 'email', 'webhook')", name="channel"),
        CheckConstraint("webhook_format IS NULL OR webhook_format IN ('slack', 'json')", name="webhook_format"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    destination: Mapped[str] = mapped_column(String(MAX_DESTINATION))
    # Webhook methods only: the body shape (None means slack).
    webhook_format: Mapped[str | None] = mapped_column(String(16), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="contact_methods")


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(String(1000), default="")
    # The team's chat webhook, which an escalation level may target ("team_webhook").
    webhook_url: Mapped[str | None] = mapped_column(String(MAX_DESTINATION), nullable=True)
    webhook_format: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list[TeamMembership]] = relationship(
        back_populates="team", cascade="all, delete-orphan", order_by="TeamMembership.id")


class TeamMembership(Base):
    __tablename__ = "team_memberships"
    __table_args__ = (UniqueConstraint("team_id", "user_id", name="uq_team_memberships_team_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    team: Mapped[Team] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship()
