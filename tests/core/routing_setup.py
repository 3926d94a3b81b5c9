"""A small routed world for incident tests: people, a schedule, a two-level policy, a source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select

from pagerpal_core.models import AlertSource, EscalationPolicy, Incident, IncidentEvent, Notification, Schedule, User
from pagerpal_core.security import sha256_hex
from pagerpal_core.services.escalation_policies import create_policy
from pagerpal_core.services.incidents import trigger_incident
from pagerpal_core.services.schedules import create_rotation, create_schedule
from tests.factories import make_user

BASE_URL = "https://pagerpal.example.test"
T0 = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)


@dataclass
class World:
    ada: User
    ben: User
    cy: User
    schedule: Schedule
    policy: EscalationPolicy
    source: AlertSource


def make_world(session, *, repeat_count: int = 0, delay: int = 10) -> World:
    """Ada (SMS + email) is on call in "primary"; level 1 pages the schedule, level 2 pages Ben.

    Ben has an email and a disabled WhatsApp; Cy has no contact method at all.
    """
    ada = make_user(session, name="Ada", contacts=[{"channel": "sms", "destination": "+14155550101"},
                                                   {"channel": "email", "destination": "ada@example.test"}])
    ben = make_user(session, name="Ben", contacts=[{"channel": "email", "destination": "ben@example.test"},
                                                   {"channel": "whatsapp", "destination": "+14155550102",
                                                    "enabled": False}])
    cy = make_user(session, name="Cy")
    schedule = create_schedule(session, name="primary", timezone="America/New_York")
    create_rotation(session, schedule, start_date=date(2025, 1, 1), shift_unit="weeks", handoff_time="09:00",
                    participants=[ada])
    policy = create_policy(session, name="default", repeat_count=repeat_count, levels=[
        {"delay_minutes": delay, "targets": [{"type": "schedule", "id": schedule.id}]},
        {"delay_minutes": delay, "targets": [{"type": "user", "id": ben.id}]},
    ])
    source = make_source(session, policy)
    return World(ada, ben, cy, schedule, policy, source)


def make_source(session, policy: EscalationPolicy | None, name: str = "grafana-prod") -> AlertSource:
    source = AlertSource(name=name, kind="generic", key_hash=sha256_hex(name), key_suffix="abcd",
                         policy_id=policy.id if policy else None)
    session.add(source)
    session.flush()
    return source


def open_incident(session, source: AlertSource, *, now: datetime = T0, external_id: str = "disk-1",
                  title: str = "Disk full on db-1", policy: EscalationPolicy | None = None) -> Incident:
    """Insert an incident as ingestion does, then hand it to trigger_incident."""
    incident = Incident(alert_source_id=source.id if source else None, external_id=external_id, title=title,
                        description="95% used", severity="critical", status="triggered",
                        policy_id=policy.id if policy else None, created_at=now, updated_at=now, last_seen_at=now)
    session.add(incident)
    session.flush()
    return trigger_incident(session, incident, actor=source, now=now, base_url=BASE_URL,
                            detail={"external_id": external_id})


def pages(session, incident: Incident) -> list[tuple]:
    """(level, user name, channel, status) for each outbox row of `incident`, in order."""
    rows = session.execute(select(Notification.escalation_level, User.name, Notification.channel,
                                  Notification.status)
                           .join(User, User.id == Notification.user_id)
                           .where(Notification.incident_id == incident.id).order_by(Notification.id))
    return [tuple(r) for r in rows]


def event_kinds(session, incident: Incident) -> list[str]:
    return list(session.scalars(select(IncidentEvent.kind).where(IncidentEvent.incident_id == incident.id)
                                .order_by(IncidentEvent.id)))
