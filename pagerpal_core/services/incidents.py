"""Incident lifecycle: trigger, acknowledge, resolve, reopen, escalate, reassign, note.

Each function validates the transition, changes the incident, and writes its timeline
event in the caller's transaction (the caller commits).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from pagerpal_core.errors import Conflict
from pagerpal_core.models import AlertSource, Incident, User
from pagerpal_core.services.timeline import record_event


def trigger_incident(session: Session, incident: Incident, *, actor: User | AlertSource | str | None,
                     now: datetime, base_url: str, detail: dict | None = None) -> Incident:
    """Start paging for a newly inserted (flushed) incident.

    Records the `triggered` event. Routing (policy, level 1 pages, next escalation time)
    is added by the escalation service.
    """
    record_event(session, incident, "triggered", f"Incident opened: {incident.title}",
                 actor=actor, detail=detail, now=now)
    return incident


def resolve_incident(session: Session, incident: Incident, *, actor: User | AlertSource | str | None,
                     now: datetime, note: str | None = None) -> Incident:
    """Resolve an open incident; escalation stops. Resolving twice is a Conflict."""
    if incident.status == "resolved":
        raise Conflict(f"incident {incident.id} is already resolved")
    incident.status = "resolved"
    incident.resolved_at = now
    incident.resolved_by_id = actor.id if isinstance(actor, User) else None
    incident.next_escalation_at = None
    session.flush()
    record_event(session, incident, "resolved", "Resolved" + (f": {note}" if note else ""),
                 actor=actor, detail={"note": note} if note else None, now=now)
    return incident
