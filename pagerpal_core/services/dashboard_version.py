"""A version for the dashboard: it changes whenever anything the dashboard shows may have changed.

The dashboard refreshes itself every few seconds; with this as its ETag an unchanged page
is a 304 with no body instead of the whole page (100+ KiB with a few hundred open
incidents). It is built from the latest change of every table the page reads (a count,
the highest id and, where the table has one, the latest `updated_at`), the rotations'
turn orders (a reorder changes no id), the viewer (role and time zone change the page),
and the current minute: ages, "until" times, worker staleness and on-call handoffs are
time-driven, so the page is re-sent at least once a minute.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pagerpal_core.models import (
    AlertSource,
    AppState,
    ContactMethod,
    EscalationLevel,
    EscalationPolicy,
    EscalationTarget,
    Incident,
    IncidentEvent,
    Notification,
    Rotation,
    RotationParticipant,
    Schedule,
    ScheduleEntry,
    ScheduleOverride,
    Team,
    TeamMembership,
    User,
)
from pagerpal_core.services.maintenance import maintenance_version
from pagerpal_core.services.self_test import STATE_KEY as SELF_TEST_KEY

# Tables the dashboard reads, directly or through the checklist, the on-call card and the warnings.
WATCHED = (Incident, IncidentEvent, Notification, User, ContactMethod, AlertSource, EscalationPolicy,
           EscalationLevel, EscalationTarget, Schedule, ScheduleEntry, ScheduleOverride, Rotation,
           RotationParticipant, Team, TeamMembership)


def _aggregates():
    columns = []
    for model in WATCHED:
        columns.append(select(func.count()).select_from(model).scalar_subquery())
        columns.append(select(func.max(model.id)).scalar_subquery())
        if hasattr(model, "updated_at"):
            columns.append(select(func.max(model.updated_at)).scalar_subquery())
    return select(*columns)


def dashboard_version(session: Session, *, now: datetime, viewer: User | None) -> str:
    """An opaque version string of the dashboard for `viewer` at `now` (changes at least every minute)."""
    parts = [repr(tuple(session.execute(_aggregates()).one()))]
    # Rotation settings and turn orders can change without any id or count changing.
    parts.append(repr(session.execute(select(Rotation.id, Rotation.shift_length, Rotation.shift_unit,
                                             Rotation.handoff_time, Rotation.start_date)
                                      .order_by(Rotation.id)).all()))
    parts.append(repr(session.execute(select(RotationParticipant.rotation_id, RotationParticipant.position,
                                             RotationParticipant.user_id)
                                      .order_by(RotationParticipant.rotation_id, RotationParticipant.position))
                      .all()))
    # Maintenance windows (created, ended early, deleted) and the last end-to-end self-test.
    parts.append(repr((maintenance_version(session), session.scalar(
        select(AppState.value).where(AppState.key == SELF_TEST_KEY)))))
    if viewer is not None:
        parts.append(repr((viewer.id, viewer.role, viewer.timezone, viewer.name, viewer.auth_version)))
    parts.append(now.strftime("%Y-%m-%dT%H:%M"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
