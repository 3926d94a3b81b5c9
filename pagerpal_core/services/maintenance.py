"""Maintenance windows: alerts keep being recorded, nobody is paged, and paging resumes at the end.

A window covers alert sources and/or escalation policies from `starts_at` to `ends_at` (or
until it is ended early). While one covers an incident's source or policy:

- the incident still opens, dedups and recovers as usual (ingestion is untouched: repeats
  never reach this module, so the hot path stays one round trip);
- when its paging would start (trigger, reopen, end of a snooze), the escalation engine asks
  `active_window_for` first and, when a window applies, `hold_incident` records "in
  maintenance (reason, until T)" on the timeline and a `MaintenanceHold` row instead of
  paging anyone;
- the worker's maintenance step (`release_maintenance_holds`) finds holds whose window is
  over — ended on time, ended early or deleted — and starts paging the incidents that are
  still triggered. If another window still covers one, the engine simply holds it again.

Acknowledged or resolved incidents are released without paging.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, exists, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, selectinload

from pagerpal_core.db import MAX_ROW_ID, UTCDateTime, is_postgres
from pagerpal_core.errors import Conflict, NotFound
from pagerpal_core.logs import log_fields
from pagerpal_core.models import AlertSource, EscalationPolicy, Incident, User
from pagerpal_core.models.maintenance import (
    MaintenanceHold,
    MaintenanceWindow,
    MaintenanceWindowPolicy,
    MaintenanceWindowSource,
)
from pagerpal_core.services.audit import record_audit
from pagerpal_core.services.timeline import record_event
from pagerpal_core.services.validation import clean_instant, clean_text, raise_if

log = logging.getLogger("pagerpal.maintenance")

MAX_REASON = 500
# A window may last at most a year and may be planned at most a year ahead: longer is a typo
# (or a way to switch paging off for good, which is what deactivating a source is for).
MAX_DURATION = timedelta(days=366)
MAX_LEAD = timedelta(days=366)
MAX_TARGETS = 200
FIELDS = ("starts_at", "ends_at", "reason", "alert_source_ids", "policy_ids")


def _ids(value, field: str, errors: dict) -> list[int] | None:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or len(value) > MAX_TARGETS or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        errors[field] = f"must be a list of at most {MAX_TARGETS} ids"
        return None
    return sorted(set(value))


def _existing(session: Session, model, ids: list[int], field: str, label: str, errors: dict) -> list:
    wanted = [i for i in ids if 0 < i <= MAX_ROW_ID]
    rows = list(session.scalars(select(model).where(model.id.in_(wanted)))) if wanted else []
    missing = sorted(set(ids) - {r.id for r in rows})
    if missing:
        errors[field] = f"no {label} with id {', '.join(str(i) for i in missing[:10])}"
    return rows


def create_window(session: Session, *, starts_at, ends_at, reason, alert_source_ids=None, policy_ids=None,
                  actor: User | None = None, now: datetime) -> MaintenanceWindow:
    """Create a window covering the given sources and/or policies (at least one of either).

    Invalid, naming each bad field: times that are not ISO-8601, `ends_at` not after
    `starts_at`, a window longer than a year, starting more than a year ahead or already
    over, unknown sources or policies, a missing reason. Audited when the audit log exists.
    """
    errors: dict = {}
    start = clean_instant(starts_at, "starts_at", errors)
    end = clean_instant(ends_at, "ends_at", errors)
    reason = clean_text(reason, "reason", errors, max_len=MAX_REASON)
    source_ids = _ids(alert_source_ids, "alert_source_ids", errors)
    policy_id_list = _ids(policy_ids, "policy_ids", errors)
    if start is not None and end is not None:
        if end <= start:
            errors["ends_at"] = "must be after starts_at"
        elif end - start > MAX_DURATION:
            errors["ends_at"] = f"must be at most {MAX_DURATION.days} days after starts_at"
        elif end <= now:
            errors["ends_at"] = "must be in the future"
        if start > now + MAX_LEAD:
            errors["starts_at"] = f"must be at most {MAX_LEAD.days} days from now"
    sources = _existing(session, AlertSource, source_ids, "alert_source_ids", "alert source", errors) \
        if source_ids else []
    policies = _existing(session, EscalationPolicy, policy_id_list, "policy_ids", "escalation policy", errors) \
        if policy_id_list else []
    if source_ids == [] and policy_id_list == [] and "alert_source_ids" not in errors:
        errors["alert_source_ids"] = "name at least one alert source or escalation policy (policy_ids)"
    raise_if(errors, "invalid maintenance window")
    window = MaintenanceWindow(reason=reason, starts_at=start, ends_at=end, created_at=now,
                               created_by_id=actor.id if isinstance(actor, User) else None)
    session.add(window)
    session.flush()
    session.add_all([MaintenanceWindowSource(window_id=window.id, alert_source_id=s.id) for s in sources])
    session.add_all([MaintenanceWindowPolicy(window_id=window.id, policy_id=p.id) for p in policies])
    session.flush()
    session.refresh(window)
    _audit(session, "maintenance_window.created", window, actor, now, after=window_as_dict(window, now))
    return window


def _audit(session: Session, action: str, window: MaintenanceWindow, actor, now: datetime, *,
           before: dict | None = None, after: dict | None = None) -> None:
    kwargs = {"actor": actor} if isinstance(actor, User) else {}
    record_audit(session, action=action, object_type="maintenance_window", object_id=window.id,
                 before=before, after=after, now=now, **kwargs)


def window_as_dict(window: MaintenanceWindow, now: datetime) -> dict:
    """The API's (and the audit log's) view of a window."""
    return {"id": window.id, "reason": window.reason, "starts_at": window.starts_at.isoformat(),
            "ends_at": window.ends_at.isoformat(),
            "ended_at": window.ended_at.isoformat() if window.ended_at else None,
            "state": window.state(now), "alert_source_ids": [s.id for s in window.sources],
            "policy_ids": [p.id for p in window.policies], "created_by_id": window.created_by_id,
            "created_at": window.created_at.isoformat()}


def get_window(session: Session, window_id: int) -> MaintenanceWindow:
    """The window with `window_id`, or NotFound."""
    window = session.get(MaintenanceWindow, window_id) \
        if isinstance(window_id, int) and 0 < window_id <= MAX_ROW_ID else None
    if window is None:
        raise NotFound(f"maintenance window {window_id} not found")
    return window


def list_windows(session: Session, *, now: datetime, include_over: bool = True,
                 limit: int = 200) -> list[MaintenanceWindow]:
    """Windows, newest start first; without `include_over`, only scheduled and active ones."""
    query = select(MaintenanceWindow).options(selectinload(MaintenanceWindow.sources),
                                              selectinload(MaintenanceWindow.policies))
    if not include_over:
        query = query.where(MaintenanceWindow.ends_at > now,
                            or_(MaintenanceWindow.ended_at.is_(None), MaintenanceWindow.ended_at > now))
    return list(session.scalars(query.order_by(MaintenanceWindow.starts_at.desc(), MaintenanceWindow.id.desc())
                                .limit(limit)))


def _active(now: datetime):
    return (MaintenanceWindow.starts_at <= now, MaintenanceWindow.ends_at > now,
            or_(MaintenanceWindow.ended_at.is_(None), MaintenanceWindow.ended_at > now))


def active_windows(session: Session, *, now: datetime) -> list[MaintenanceWindow]:
    """Windows in force at `now` (the dashboard's banner), ending soonest first."""
    return list(session.scalars(select(MaintenanceWindow).where(*_active(now))
                                .options(selectinload(MaintenanceWindow.sources),
                                         selectinload(MaintenanceWindow.policies))
                                .order_by(MaintenanceWindow.ends_at, MaintenanceWindow.id)))


def active_window_for(session: Session, source_id: int | None, policy_id: int | None,
                      now: datetime) -> MaintenanceWindow | None:
    """The window in force at `now` that covers `source_id` or `policy_id` (the latest-ending one).

    One indexed query, built once, asked only when an incident's paging would start; None
    without a source and a policy (nothing can be covered).
    """
    if source_id is None and policy_id is None:
        return None
    with session.no_autoflush:  # reads windows only: the caller's pending changes can wait
        return session.scalars(ACTIVE_WINDOW_FOR, {"now": now, "source_id": source_id,
                                                   "policy_id": policy_id}).first()


def window_in_force_id(db: Session | Connection, source_id: int | None, policy_id: int | None,
                       now: datetime) -> int | None:
    """`active_window_for`'s window id, by a Core query (a session or a bare connection)."""
    if source_id is None and policy_id is None:
        return None
    return db.execute(ACTIVE_WINDOW_ID_FOR, {"now": now, "source_id": source_id, "policy_id": policy_id}).scalar()


# Named SQL: the latest-ending window in force at :now covering :source_id or :policy_id (a
# NULL id covers nothing); the whole window, or only its id.
def _in_force_covering(query):
    at = bindparam("now", type_=UTCDateTime)
    return (query.where(MaintenanceWindow.starts_at <= at, MaintenanceWindow.ends_at > at,
                        or_(MaintenanceWindow.ended_at.is_(None), MaintenanceWindow.ended_at > at),
                        or_(exists().where(MaintenanceWindowSource.window_id == MaintenanceWindow.id,
                                           MaintenanceWindowSource.alert_source_id == bindparam("source_id")),
                            exists().where(MaintenanceWindowPolicy.window_id == MaintenanceWindow.id,
                                           MaintenanceWindowPolicy.policy_id == bindparam("policy_id"))))
            .order_by(MaintenanceWindow.ends_at.desc(), MaintenanceWindow.id).limit(1))


ACTIVE_WINDOW_FOR = _in_force_covering(select(MaintenanceWindow))
ACTIVE_WINDOW_ID_FOR = _in_force_covering(select(MaintenanceWindow.id))


def until_text(window: MaintenanceWindow) -> str:
    """"2026-12-02 14:00 UTC": when the window stops holding pages."""
    return f"{window.effective_end:%Y-%m-%d %H:%M} UTC"


def hold_incident(session: Session, incident: Incident, window: MaintenanceWindow, *, now: datetime,
                  actor=None) -> bool:
    """Hold `incident`'s paging until `window` is over; the timeline says so. Always returns False
    (nobody was paged), so the engine can `return hold_incident(...)`."""
    incident.next_escalation_at = None
    hold = session.get(MaintenanceHold, incident.id)
    if hold is None:
        session.add(MaintenanceHold(incident_id=incident.id, window_id=window.id, held_at=now))
    else:
        hold.window_id, hold.held_at = window.id, now
    session.flush()
    record_event(session, incident, "maintenance",
                 f"In maintenance ({window.reason}, until {until_text(window)}): nobody is paged now; "
                 "paging starts when the window ends if the incident is still open.",
                 actor=actor, detail={"window_id": window.id, "reason": window.reason,
                                      "until": window.effective_end.isoformat()}, now=now)
    return False


def incident_hold(session: Session, incident: Incident) -> MaintenanceHold | None:
    """The hold on `incident`, if its paging waits for a window now."""
    return session.get(MaintenanceHold, incident.id)


def end_window(session: Session, window: MaintenanceWindow, *, actor: User | None = None,
               now: datetime) -> MaintenanceWindow:
    """End a window now (or cancel one not yet begun). Held incidents page at the worker's next step.

    Ending a window that is already over is a Conflict.
    """
    if window.state(now) == "over":
        raise Conflict(f"maintenance window {window.id} is already over", detail={"state": "over"})
    before = {"ended_at": None}
    window.ended_at = now
    session.flush()
    _audit(session, "maintenance_window.ended", window, actor, now, before=before,
           after={"ended_at": window.ended_at.isoformat()})
    return window


def delete_window(session: Session, window: MaintenanceWindow, *, actor: User | None = None,
                  now: datetime) -> None:
    """Delete a window; incidents it held page at the worker's next step (their hold loses its window)."""
    before = window_as_dict(window, now)
    window_id = window.id
    session.execute(MaintenanceHold.__table__.update().where(MaintenanceHold.window_id == window_id)
                    .values(window_id=None))  # SQLite may run without foreign-key actions
    session.execute(delete(MaintenanceWindowSource).where(MaintenanceWindowSource.window_id == window_id))
    session.execute(delete(MaintenanceWindowPolicy).where(MaintenanceWindowPolicy.window_id == window_id))
    session.delete(window)
    session.flush()
    kwargs = {"actor": actor} if isinstance(actor, User) else {}
    record_audit(session, action="maintenance_window.deleted", object_type="maintenance_window",
                 object_id=window_id, before=before, now=now, **kwargs)


def maintenance_version(session: Session) -> tuple:
    """What changes when a window is created, ended or deleted (for the dashboard's ETag)."""
    return tuple(session.execute(select(func.count(MaintenanceWindow.id), func.max(MaintenanceWindow.id),
                                        func.max(MaintenanceWindow.ended_at))).one())


# --- the worker's step -------------------------------------------------------------------------

@dataclass
class Released:
    """What one release did: the incident, and whether it started paging."""

    incident_id: int
    paged: bool


def claim_released_holds(session: Session, *, now: datetime, limit: int) -> list[MaintenanceHold]:
    """Lock holds whose window is over or gone (SKIP LOCKED on PostgreSQL)."""
    over = or_(MaintenanceHold.window_id.is_(None),
               exists().where(MaintenanceWindow.id == MaintenanceHold.window_id,
                              or_(MaintenanceWindow.ends_at <= now, MaintenanceWindow.ended_at <= now)))
    query = (select(MaintenanceHold).where(over).order_by(MaintenanceHold.held_at, MaintenanceHold.incident_id)
             .limit(limit).execution_options(populate_existing=True))
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True, of=MaintenanceHold)
    return list(session.scalars(query))


def release_maintenance_holds(session: Session, *, now: datetime, base_url: str, limit: int = 50) -> list[Released]:
    """The worker's maintenance step: page the incidents whose window is over. The caller commits.

    Each incident is locked and re-read, runs in a savepoint (one failure is logged and tried
    again next cycle), and pages through the engine's `start_escalation` — which holds it again
    if another window still covers it.
    """
    # Imported here: the escalation engine imports this module for its gate.
    from pagerpal_core.services import escalation
    from pagerpal_core.services.incidents import lock_incident

    released = []
    for hold in claim_released_holds(session, now=now, limit=limit):
        window = hold.window
        try:
            with session.begin_nested():
                incident = session.get(Incident, hold.incident_id)
                session.delete(hold)
                session.flush()
                if incident is None:
                    continue
                incident = lock_incident(session, incident)
                if incident.status != "triggered":
                    released.append(Released(incident.id, False))
                    continue
                why = (f"Maintenance ({window.reason}) ended at {until_text(window)}" if window is not None
                       else "The maintenance window was deleted")
                record_event(session, incident, "maintenance_ended", f"{why}; paging starts now.",
                             actor="maintenance", detail={"window_id": window.id if window else None}, now=now)
                paged = escalation.start_escalation(session, incident, now=now, base_url=base_url,
                                                    actor="maintenance")
                released.append(Released(incident.id, paged))
        except Exception:  # one broken incident must not keep the others silent
            log.exception("releasing a maintenance hold failed", extra=log_fields(incident_id=hold.incident_id))
    return released
