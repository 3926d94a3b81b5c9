"""Timeline events: every state change of an incident writes one, in the same transaction."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session, scoped_session

from pagerpal_core.db import current_session
from pagerpal_core.models import AlertSource, Incident, IncidentEvent, User
from pagerpal_core.models.alert_sources import SourceSnapshot
from pagerpal_core.timeutil import utcnow

# An alert source as an actor: the ORM row, or the snapshot ingestion authenticated with.
_SOURCES = (AlertSource, SourceSnapshot)

MAX_DETAIL_BYTES = 16_384


def actor_label(actor: User | AlertSource | SourceSnapshot | str | None) -> str:
    """How an actor reads on the timeline."""
    if isinstance(actor, User):
        return actor.name or actor.email
    if isinstance(actor, _SOURCES):
        return f"source {actor.name}"
    return actor or "system"


def bounded_detail(detail: dict | None, limit: int = MAX_DETAIL_BYTES) -> dict:
    """`detail` as is when it is small enough, else a truncated JSON preview of it."""
    detail = detail or {}
    text = json.dumps(detail, default=str, ensure_ascii=False)
    if len(text.encode("utf-8")) <= limit:
        return detail
    return {"truncated": True, "preview": text[: limit // 2]}


# Key in `Session.info` naming the signed-in account a request runs for (see record_as_caller).
RECORDED_BY_KEY = "pagerpal.recorded_by_id"


def record_as_caller(session: Session, user: User | None) -> None:
    """Name the authenticated account on whose request `session` works.

    Every timeline event written through this session stores it as `recorded_by_id`, beside
    the actor it is recorded for (which "acting as" may set to someone else). The web sets
    it once per request when it authenticates the caller; the worker never does (None).
    """
    session.info[RECORDED_BY_KEY] = user.id if user is not None else None


def _recorded_by(session: Session | scoped_session) -> int | None:
    # A scoped session that holds no session yet has nobody recorded (an autocommitted alert
    # never makes one).
    current = current_session(session)
    return None if current is None else current.info.get(RECORDED_BY_KEY)


def event_row(session: Session, incident_id: int | None, kind: str, message: str, *,
              actor: User | AlertSource | SourceSnapshot | str | None = None, detail: dict | None = None,
              now: datetime | None = None) -> dict:
    """One timeline event's column values (`recorded_by_id` from `record_as_caller`)."""
    return dict(
        incident_id=incident_id,
        kind=kind,
        message=message,
        actor_user_id=actor.id if isinstance(actor, User) else None,
        actor_source_id=actor.id if isinstance(actor, _SOURCES) else None,
        actor_label=actor_label(actor),
        recorded_by_id=_recorded_by(session),
        detail=bounded_detail(detail),
        created_at=now or utcnow(),
    )


def record_event(session: Session, incident: Incident, kind: str, message: str, *,
                 actor: User | AlertSource | str | None = None, detail: dict | None = None,
                 now: datetime | None = None) -> IncidentEvent:
    """Append one event to `incident`'s timeline (written at the session's next flush).

    Not flushed here: the events and incident changes of one action then reach the
    database together, in one flush (one multi-row INSERT per table), not a round trip each.
    """
    event = IncidentEvent(**event_row(session, incident.id, kind, message, actor=actor, detail=detail, now=now))
    session.add(event)
    return event


def insert_event_rows(session: Session, rows: list[dict]) -> None:
    """Write `event_row`s at once, in one statement, for an incident not loaded as an object."""
    session.execute(insert(IncidentEvent.__table__), rows)
