"""Secret calendar feed URLs: a user's shifts for calendar apps that cannot sign in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pagerpal_core.db import Base, UTCDateTime
from pagerpal_core.timeutil import utcnow


class CalendarFeedToken(Base):
    """One user's feed token. Only its SHA-256 and a display suffix are stored (like source keys);
    one per user, so regenerating replaces it and revoking deletes it."""

    __tablename__ = "calendar_feed_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_suffix: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
