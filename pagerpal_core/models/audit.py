"""The audit log: one append-only row per configuration change and sign-in event.

Rows are written by `pagerpal_core.services.audit.record_audit` in the same transaction as
the change they describe, and never changed afterwards: there is no update or delete path
in the application, the ORM refuses to flush one (below), and the migration adds a trigger
that refuses UPDATE in the database itself. The only deletion is the worker's retention
chore, a bulk DELETE of rows older than AUDIT_RETENTION_DAYS.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from pagerpal_core.db import Base, JSONType, UTCDateTime
from pagerpal_core.timeutil import utcnow

# user: a person signed in to the UI or calling the API with their account's credentials;
# cli: `flask pagerpal ...` on the server; api_key: a caller holding an alert-source key or a
# heartbeat token; system: the worker or anything else with no caller.
ACTOR_KINDS = ("user", "cli", "api_key", "system")


class AuditEvent(Base):
    """Who changed what, when, from where: the before/after of the changed fields, secrets masked."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint("actor_kind IN ('user', 'cli', 'api_key', 'system')", name="actor_kind"),
        # The admin page's filters: one object's history, one actor's actions, a time range.
        Index("ix_audit_events_object", "object_type", "object_id", "id"),
        Index("ix_audit_events_actor", "actor_user_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # No foreign key on purpose: an audit row outlives whatever it names and is never rewritten
    # (ON DELETE SET NULL would be an update). The label keeps who it was at the time.
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_kind: Mapped[str] = mapped_column(String(16), default="system")
    actor_label: Mapped[str] = mapped_column(String(200), default="system")
    # Where the change came in: ui, api, cli or worker (None when unknown).
    via: Mapped[str | None] = mapped_column(String(16), nullable=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    before: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    after: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    client_address: Mapped[str | None] = mapped_column(String(100), nullable=True)


@event.listens_for(AuditEvent, "before_update")
def _refuse_update(mapper, connection, target) -> None:
    raise RuntimeError("audit events are append-only; an existing row is never changed")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(mapper, connection, target) -> None:
    raise RuntimeError("audit events are append-only; only the retention chore deletes old rows")
