"""Incidents and their timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pagerpal_core.db import Base, JSONType, UTCDateTime
from pagerpal_core.timeutil import utcnow

SEVERITIES = ("critical", "high", "warning", "info")
STATUSES = ("triggered", "acknowledged", "resolved")
OPEN_STATUSES = ("triggered", "acknowledged")

# The predicate of the "one open incident per (source, external id)" index. Inserts that
# use ON CONFLICT must repeat it exactly, so it lives in one place.
OPEN_INCIDENT_PREDICATE = "status IN ('triggered', 'acknowledged')"


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint("status IN ('triggered', 'acknowledged', 'resolved')", name="status"),
        CheckConstraint("severity IN ('critical', 'high', 'warning', 'info')", name="severity"),
        # Dedup lives in the schema: at most one open incident per alert, whatever races.
        Index("uq_incidents_open_alert", "alert_source_id", "external_id", unique=True,
              sqlite_where=text(OPEN_INCIDENT_PREDICATE), postgresql_where=text(OPEN_INCIDENT_PREDICATE)),
        # The worker's "due escalations" query reads only triggered rows by time.
        Index("ix_incidents_escalation_due", "next_escalation_at",
              sqlite_where=text("status = 'triggered'"), postgresql_where=text("status = 'triggered'")),
        Index("ix_incidents_status_created", "status", "created_at"),
        # The worker's "snooze or ack timeout over" query reads only acknowledged rows by time.
        Index("ix_incidents_retrigger_due", "retrigger_at",
              sqlite_where=text("status = 'acknowledged'"), postgresql_where=text("status = 'acknowledged'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_source_id: Mapped[int | None] = mapped_column(ForeignKey("alert_sources.id", ondelete="SET NULL"),
                                                        nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16), default="high")
    status: Mapped[str] = mapped_column(String(16), default="triggered")
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
    links: Mapped[list] = mapped_column(JSONType, default=list)

    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True, index=True)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("escalation_policies.id"), nullable=True,
                                                  index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    current_level: Mapped[int] = mapped_column(Integer, default=0)
    # Which pass through the policy's levels (0 = first); bounded by the policy's repeat_count.
    escalation_round: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Counts paging passes (trigger, reopen, manual escalate) so outbox dedup keys stay unique.
    page_generation: Mapped[int] = mapped_column(Integer, default=0)
    unrouted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set by an explicit reassign: escalation pages further levels but leaves the assignee alone.
    assignment_pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # When an acknowledged incident goes back to triggered and pages level 1 again: the end of
    # a snooze, or the policy's acknowledgement timeout. None = it stays acknowledged.
    retrigger_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    snoozed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    occurrence_count: Mapped[int] = mapped_column(Integer, default=1)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Repeats since the last "repeated" timeline entry, so storms summarise instead of flooding.
    repeats_unlogged: Mapped[int] = mapped_column(Integer, default=0)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    alert_source = relationship("AlertSource")
    assignee = relationship("User", foreign_keys=[assignee_id])
    snoozed_by = relationship("User", foreign_keys=[snoozed_by_id])
    policy = relationship("EscalationPolicy")
    team = relationship("Team")
    events: Mapped[list[IncidentEvent]] = relationship(
        back_populates="incident", cascade="all, delete-orphan", order_by="IncidentEvent.id")

    @property
    def is_open(self) -> bool:
        """True while triggered or acknowledged."""
        return self.status in OPEN_STATUSES

    @property
    def is_snoozed(self) -> bool:
        """Acknowledged until `snoozed_until`, then it pages level 1 again."""
        return self.status == "acknowledged" and self.snoozed_until is not None

    @property
    def escalation_exhausted(self) -> bool:
        """Triggered, routed, and no level is left to page: nobody acknowledged every level."""
        return (self.status == "triggered" and self.next_escalation_at is None and not self.unrouted
                and self.policy_id is not None and bool(self.current_level))

    @property
    def paging_state(self) -> str:
        """One word for what paging is doing now: paging, exhausted, unrouted, snoozed, acknowledged, resolved."""
        if self.status == "resolved":
            return "resolved"
        if self.status == "acknowledged":
            return "snoozed" if self.snoozed_until is not None else "acknowledged"
        if self.unrouted:
            return "unrouted"
        if self.escalation_exhausted:
            return "exhausted"
        return "paging"


class IncidentEvent(Base):
    """One line of an incident's timeline: who did what, when, with structured detail."""

    __tablename__ = "incident_events"
    __table_args__ = (Index("ix_incident_events_incident", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    actor_source_id: Mapped[int | None] = mapped_column(ForeignKey("alert_sources.id", ondelete="SET NULL"),
                                                        nullable=True)
    # Human-readable actor ("Ada Lovelace", "source grafana-prod", "system") kept for history.
    actor_label: Mapped[str] = mapped_column(String(200), default="system")
    # The signed-in account that made the request (UI session or API credentials), which may
    # differ from the actor it was recorded for ("acting as"); None for alerts and the worker.
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)

    incident: Mapped[Incident] = relationship(back_populates="events")
