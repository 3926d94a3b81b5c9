"""Alert ingestion: parsed alert events in, incidents opened, counted, resolved.

Dedup is the schema's job. The partial unique index `uq_incidents_open_alert` allows one
open incident per (source, external id); a trigger is an INSERT ... ON CONFLICT DO
NOTHING whose conflict target repeats that index's predicate exactly, so concurrent
identical alerts — in any number of web processes — produce one incident, and the
losers count themselves on it with one UPDATE. There is no read-then-write anywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pagerpal_core.db import UTCDateTime, is_postgres
from pagerpal_core.errors import Conflict
from pagerpal_core.logs import log_fields
from pagerpal_core.models import AlertSource, Incident
from pagerpal_core.models.incidents import OPEN_INCIDENT_PREDICATE, OPEN_STATUSES
from pagerpal_core.payloads.common import ACKNOWLEDGE, IGNORE, RESOLVE, TRIGGER, AlertEvent
from pagerpal_core.services import incidents as incident_actions
from pagerpal_core.services.alert_sources import map_severity
from pagerpal_core.services.timeline import record_event

log = logging.getLogger("pagerpal.ingestion")

# Outcomes, as the webhook responses report them.
CREATED = "created"                 # a new incident was opened (and paged)
REPEATED = "repeated"               # counted on the open incident; nobody paged
RESOLVED = "resolved"               # the open incident was resolved by the source
ACKNOWLEDGED = "acknowledged"       # the open incident was acknowledged by the source
NOT_OPEN = "not_open"               # recovery/ack with no open incident: a no-op
ALREADY_ACKNOWLEDGED = "already_acknowledged"
IGNORED = "ignored"                 # a state PagerPal records but does not act on

TEST_ALERT_EXTERNAL_ID = "pagerpal-test-alert"


@dataclass
class IngestResult:
    """What one alert event did."""

    outcome: str
    external_id: str
    incident_id: int | None
    message: str
    occurrence_count: int | None = None

    def as_dict(self) -> dict:
        return {"outcome": self.outcome, "external_id": self.external_id, "incident_id": self.incident_id,
                "message": self.message,
                **({"occurrence_count": self.occurrence_count} if self.occurrence_count else {})}


def should_note_repeat(occurrence_count: int) -> bool:
    """Whether this repeat writes a timeline row: the first repeat, then at 10, 100, 1000, ...

    An alert storm of a million repeats writes seven rows; the count in between lives in
    `occurrence_count` and `repeats_unlogged`.
    """
    if occurrence_count == 2:
        return True
    if occurrence_count < 10:
        return False
    while occurrence_count % 10 == 0:
        occurrence_count //= 10
    return occurrence_count == 1


def ingest_events(session: Session, source: AlertSource, events: list[AlertEvent], *, now: datetime,
                  base_url: str) -> list[IngestResult]:
    """Apply every event of one request in the caller's transaction; results in input order.

    Events are applied sorted by external id so two requests carrying the same alerts in
    different orders lock their incident rows in the same order (no deadlock).
    """
    order = sorted(range(len(events)), key=lambda i: events[i].external_id)
    results: list[IngestResult | None] = [None] * len(events)
    for i in order:
        results[i] = ingest_event(session, source, events[i], now=now, base_url=base_url)
    return results


def ingest_event(session: Session, source: AlertSource, event: AlertEvent, *, now: datetime,
                 base_url: str) -> IngestResult:
    """Apply one event: open or count (trigger), resolve, acknowledge, or record (ignore)."""
    if event.action == TRIGGER:
        return _trigger(session, source, event, now=now, base_url=base_url)
    if event.action == RESOLVE:
        return _resolve(session, source, event, now=now)
    if event.action == ACKNOWLEDGE:
        return _acknowledge(session, source, event, now=now)
    if event.action == IGNORE:
        return _ignore(session, source, event, now=now)
    raise ValueError(f"unknown alert action {event.action!r}")


# --- trigger: insert or count ------------------------------------------------------------

_incidents = Incident.__table__


def _insert_if_no_open(dialect_insert):
    # Named SQL: open an incident unless (source, external id) already has an open one.
    # The conflict target names the partial unique index by its columns and its exact
    # predicate; PostgreSQL and SQLite both pick an arbiter index only on an identical
    # WHERE clause, which is why the predicate is one shared constant. RETURNING the whole
    # row loads the new Incident without a second query; built once per dialect and run
    # with a parameter dict, so its compiled form is cached.
    return select(Incident).from_statement(
        dialect_insert(_incidents)
        .on_conflict_do_nothing(index_elements=["alert_source_id", "external_id"],
                                index_where=text(OPEN_INCIDENT_PREDICATE))
        .returning(*_incidents.c))


INSERT_IF_NO_OPEN = {"postgresql": _insert_if_no_open(postgresql.insert),
                     "sqlite": _insert_if_no_open(sqlite.insert)}

# Named SQL: count one more occurrence on the open incident of (source, external id).
# One UPDATE under the row lock, so 50 concurrent repeats add exactly 50.
COUNT_REPEAT = (
    update(_incidents)
    .where(_incidents.c.alert_source_id == bindparam("match_source_id"),
           _incidents.c.external_id == bindparam("match_external_id"),
           text(OPEN_INCIDENT_PREDICATE))
    .values(occurrence_count=_incidents.c.occurrence_count + 1,
            repeats_unlogged=_incidents.c.repeats_unlogged + 1,
            last_seen_at=bindparam("now", type_=UTCDateTime),
            updated_at=bindparam("now", type_=UTCDateTime))
    .returning(_incidents.c.id, _incidents.c.occurrence_count, _incidents.c.repeats_unlogged)
)

# Named SQL: take `logged` repeats off the unlogged count once they are on the timeline.
MARK_REPEATS_LOGGED = (
    update(_incidents).where(_incidents.c.id == bindparam("incident_id"))
    .values(repeats_unlogged=_incidents.c.repeats_unlogged - bindparam("logged"))
)


def _trigger(session: Session, source: AlertSource, event: AlertEvent, *, now: datetime,
             base_url: str) -> IngestResult:
    values = dict(
        alert_source_id=source.id, external_id=event.external_id, title=event.title,
        description=event.description or "", severity=map_severity(source, event.severity),
        status="triggered", details=event.details or {}, links=event.links or [],
        team_id=source.team_id, policy_id=source.policy_id, current_level=0, escalation_round=0,
        page_generation=0, unrouted=False, occurrence_count=1, last_seen_at=now, repeats_unlogged=0,
        created_at=now, updated_at=now,
    )
    # Insert, else count. Between the two statements the open incident may be resolved by
    # someone else; then the insert is tried again and succeeds. Three rounds are plenty.
    insert_stmt = INSERT_IF_NO_OPEN["postgresql" if is_postgres(session) else "sqlite"]
    for _ in range(3):
        incident = session.scalars(insert_stmt, values).first()
        if incident is not None:
            incident_actions.trigger_incident(
                session, incident, actor=source, now=now, base_url=base_url,
                detail={"external_id": event.external_id, "source_severity": event.severity,
                        "payload": event.raw})
            return IngestResult(CREATED, event.external_id, incident.id, "incident opened", 1)
        params = {"match_source_id": source.id, "match_external_id": event.external_id, "now": now}
        row = session.execute(COUNT_REPEAT, params).one_or_none()
        if row is not None:
            incident_id, count, unlogged = row
            if should_note_repeat(count):
                _note_repeats(session, incident_id, count, unlogged, event, source, now=now)
            return IngestResult(REPEATED, event.external_id, incident_id,
                                "duplicate of the open incident; counted, nobody paged", count)
    raise Conflict("the alert's incident changed state repeatedly while ingesting; retry")


def _note_repeats(session: Session, incident_id: int, count: int, unlogged: int, event: AlertEvent,
                  source: AlertSource, *, now: datetime) -> None:
    incident = session.get(Incident, incident_id, populate_existing=True)
    if count == 2:
        record_event(session, incident, "repeated",
                     "Alert repeated; further repeats are counted and summarised",
                     actor=source, now=now, detail={"occurrence_count": count, "payload": event.raw})
    else:
        record_event(session, incident, "repeats_summarised",
                     f"{unlogged} more repeats (seen {count} times in all)",
                     actor=source, now=now,
                     detail={"repeats": unlogged, "occurrence_count": count, "payload": event.raw})
    # We hold the row lock from the counting UPDATE, so nothing moved in between; the
    # subtraction keeps the count right even so.
    session.execute(MARK_REPEATS_LOGGED, {"incident_id": incident_id, "logged": unlogged})
    session.expire(incident, ["repeats_unlogged"])


def summarise_unlogged_repeats(session: Session, incident: Incident, *, actor, now: datetime) -> None:
    """Write the repeats not yet on the timeline as one row (before a resolve or ack)."""
    unlogged, count = incident.repeats_unlogged, incident.occurrence_count
    if unlogged:
        record_event(session, incident, "repeats_summarised",
                     f"{unlogged} more repeats (seen {count} times in all)",
                     actor=actor, now=now, detail={"repeats": unlogged, "occurrence_count": count})
        incident.repeats_unlogged = 0
        session.flush()


# --- resolve, acknowledge, ignore --------------------------------------------------------

def _open_incident(session: Session, source: AlertSource, external_id: str) -> Incident | None:
    # Locks the open incident (PostgreSQL) so a concurrent recovery waits and then finds
    # it resolved; the partial unique index guarantees at most one.
    return session.scalars(
        select(Incident)
        .where(Incident.alert_source_id == source.id, Incident.external_id == external_id,
               Incident.status.in_(OPEN_STATUSES))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def _no_open_incident(session: Session, source: AlertSource, external_id: str, verb: str) -> IngestResult:
    last_id = session.scalar(
        select(Incident.id).where(Incident.alert_source_id == source.id, Incident.external_id == external_id)
        .order_by(Incident.id.desc()).limit(1))
    if last_id is None:
        message = f"no incident for this alert; nothing to {verb}"
    else:
        message = f"the alert's incident is already resolved; nothing to {verb}"
    return IngestResult(NOT_OPEN, external_id, last_id, message)


def _resolve(session: Session, source: AlertSource, event: AlertEvent, *, now: datetime) -> IngestResult:
    incident = _open_incident(session, source, event.external_id)
    if incident is None:
        return _no_open_incident(session, source, event.external_id, "resolve")
    record_event(session, incident, "alert_recovered", f"Source {source.name} reports the alert recovered",
                 actor=source, now=now, detail={"state": event.state, "payload": event.raw})
    summarise_unlogged_repeats(session, incident, actor=source, now=now)
    incident_actions.resolve_incident(session, incident, actor=source, now=now,
                                      note="the alert recovered at its source")
    return IngestResult(RESOLVED, event.external_id, incident.id, "incident resolved",
                        incident.occurrence_count)


def _acknowledge(session: Session, source: AlertSource, event: AlertEvent, *, now: datetime) -> IngestResult:
    incident = _open_incident(session, source, event.external_id)
    if incident is None:
        return _no_open_incident(session, source, event.external_id, "acknowledge")
    if incident.status == "acknowledged":
        return IngestResult(ALREADY_ACKNOWLEDGED, event.external_id, incident.id,
                            "incident already acknowledged", incident.occurrence_count)
    summarise_unlogged_repeats(session, incident, actor=source, now=now)
    incident_actions.acknowledge_incident(session, incident, actor=source, now=now)
    return IngestResult(ACKNOWLEDGED, event.external_id, incident.id, "incident acknowledged",
                        incident.occurrence_count)


def _ignore(session: Session, source: AlertSource, event: AlertEvent, *, now: datetime) -> IngestResult:
    incident = _open_incident(session, source, event.external_id)
    log.info("alert state recorded, not acted on", extra=log_fields(
        source_id=source.id, external_id=event.external_id, state=event.state))
    if incident is None:
        return IngestResult(IGNORED, event.external_id, None,
                            f"state {event.state} recorded; no action taken")
    record_event(session, incident, "alert_state",
                 f"Source {source.name} reports state {event.state}; no action taken",
                 actor=source, now=now, detail={"state": event.state, "payload": event.raw})
    return IngestResult(IGNORED, event.external_id, incident.id,
                        f"state {event.state} noted on the open incident; no action taken")


# --- test alerts -------------------------------------------------------------------------

def send_test_alert(session: Session, source: AlertSource, *, now: datetime, base_url: str,
                    resolve: bool = False) -> IngestResult:
    """Open (or with resolve=True, resolve) the source's test incident, exactly as a webhook would.

    The UI's "send test alert" button and `flask pagerpal send-test-alert` call this; the
    test incident pages the source's escalation policy like any other.
    """
    if not source.active:
        raise Conflict(f"alert source {source.name!r} is inactive; activate it before testing")
    event = AlertEvent(
        action=RESOLVE if resolve else TRIGGER,
        external_id=TEST_ALERT_EXTERNAL_ID,
        title=f"Test alert from PagerPal ({source.name})",
        description="A test alert sent from PagerPal to check that this source's paging works. "
                    "Resolve it when you have been paged.",
        severity=None,
        details={"test": True},
        raw={"test": True, "source": source.name, "status": "resolved" if resolve else "firing"},
        state="resolved" if resolve else "firing",
    )
    return ingest_event(session, source, event, now=now, base_url=base_url)
