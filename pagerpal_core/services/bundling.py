"""Per-destination bundling: a storm of incidents does not become a storm of messages.

At most PAGES_PER_DESTINATION messages go to one destination (channel + phone or address) per
PAGE_BUNDLE_WINDOW_SECONDS. The worker calls `fold_excess_pages` just before it claims: due
incident pages beyond a destination's budget become `bundled`, each pointing (`bundle_id`) at
one pending summary message for that destination, due when the window frees a slot. The
summary names every folded incident ("+7 more incidents: #51 Disk full, … open …/mine"), so no
incident goes unpaged and fewer messages arrive.

A message counts against the window from its first attempt (`first_attempt_at`), so a page
retried after a provider error is one message, not several. Pages are budgeted oldest first.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from pagerpal_core.models import Incident, Notification
from pagerpal_core.security import clip, mask_destination
from pagerpal_core.services.timeline import record_event

MAX_SUMMARY_CHARS = 900     # an SMS summary stays a few segments long; email gets the same text
TITLE_CHARS = 40


def _recent_counts(session: Session, places: list[tuple[str, str]], since: datetime) -> dict:
    """(channel, destination) → (messages first tried since `since`, the earliest such time)."""
    destinations = sorted({d for _, d in places})
    rows = session.execute(
        select(Notification.channel, Notification.destination, func.count(), func.min(Notification.first_attempt_at))
        .where(Notification.destination.in_(destinations), Notification.first_attempt_at > since,
               Notification.kind != "test")
        .group_by(Notification.channel, Notification.destination)).all()
    return {(channel, destination): (count, earliest) for channel, destination, count, earliest in rows}


def summary_text(incidents: list[Incident], base_url: str) -> tuple[str, str]:
    """(subject, body) of a summary for `incidents`, naming each by number (titles while they fit)."""
    parts = []
    length = 0
    for incident in incidents:
        title = " ".join((incident.title or "").split())[:TITLE_CHARS]
        part = f"#{incident.id} {title}".strip()
        if length + len(part) > MAX_SUMMARY_CHARS - 120:
            part = f"#{incident.id}"  # past the budget only the number: every incident stays named
        parts.append(part)
        length += len(part) + 2
    count = len(incidents)
    noun = "incident" if count == 1 else "incidents"
    subject = f"[PagerPal] +{count} more {noun}"
    body = f"+{count} more {noun}: " + ", ".join(parts) + f" … open {base_url.rstrip('/')}/mine"
    return subject, body


def _rebuild(session: Session, summary: Notification, base_url: str) -> None:
    incidents = list(session.scalars(
        select(Incident).join(Notification, Notification.incident_id == Incident.id)
        .where(Notification.bundle_id == summary.id).order_by(Incident.id).distinct()))
    summary.subject, body = summary_text(incidents, base_url)
    summary.body = clip(body, 4000)


def fold_excess_pages(session: Session, *, now: datetime, per_destination: int, window_seconds: float,
                      base_url: str, limit: int = 500) -> int:
    """Fold due pages over their destination's budget into summaries; returns how many were folded.

    Flushes; the caller (the dispatch step, before claiming) commits.
    """
    due = list(session.scalars(
        select(Notification).where(
            Notification.status == "pending", Notification.next_attempt_at <= now, Notification.kind == "page",
            Notification.incident_id.is_not(None), Notification.first_attempt_at.is_(None))
        .order_by(Notification.id).limit(limit).with_for_update(skip_locked=True)))
    if not due:
        return 0
    groups: dict[tuple[str, str], list[Notification]] = defaultdict(list)
    for row in due:
        groups[(row.channel, row.destination)].append(row)
    window = timedelta(seconds=window_seconds)
    recent = _recent_counts(session, list(groups), now - window)
    folded = 0
    for place, rows in groups.items():
        count, earliest = recent.get(place, (0, None))
        budget = max(0, per_destination - count)
        excess = rows[budget:]
        if not excess:
            continue
        summary = _open_summary(session, place, excess[0], due_at=(earliest or now) + window, now=now)
        for row in excess:
            row.status, row.bundle_id, row.next_attempt_at, row.updated_at = "bundled", summary.id, None, now
            incident = session.get(Incident, row.incident_id)
            record_event(session, incident, "notification_bundled",
                         f"Page by {row.channel} to {mask_destination(row.destination)} folded into the summary "
                         f"sent at {summary.next_attempt_at:%H:%M:%S} UTC (more than {per_destination} "
                         "messages to this destination in the window)",
                         detail={"notification_id": row.id, "bundle_id": summary.id}, now=now)
            folded += 1
        session.flush()
        _rebuild(session, summary, base_url)
    session.flush()
    return folded


def cancel_settled_summaries(session: Session, *, now: datetime) -> int:
    """Cancel pending summaries none of whose folded incidents is still triggered (acknowledged,
    snoozed or resolved since): a summary of handled incidents would only wake someone.

    One statement, so a summary another worker has already claimed (no longer pending) is left
    alone. Flushes nothing; the caller commits.
    """
    folded = aliased(Notification)
    still_triggered = (select(folded.id).join(Incident, Incident.id == folded.incident_id)
                       .where(folded.bundle_id == Notification.id, Incident.status == "triggered").exists())
    result = session.execute(
        update(Notification)
        .where(Notification.kind == "summary", Notification.status == "pending", ~still_triggered)
        .values(status="cancelled", next_attempt_at=None, updated_at=now)
        .execution_options(synchronize_session=False))
    return result.rowcount or 0


def _open_summary(session: Session, place: tuple[str, str], first: Notification, *, due_at: datetime,
                  now: datetime) -> Notification:
    """The destination's pending summary, or a new one due at `due_at`."""
    channel, destination = place
    summary = session.scalars(select(Notification).where(
        Notification.kind == "summary", Notification.status == "pending", Notification.channel == channel,
        Notification.destination == destination).order_by(Notification.id).limit(1)
        .with_for_update()).first()
    if summary is None:
        summary = Notification(kind="summary", incident_id=None, user_id=first.user_id, channel=channel,
                               destination=destination, contact_method_id=first.contact_method_id,
                               subject="", body="", status="pending", attempts=0, next_attempt_at=due_at,
                               created_at=now, updated_at=now)
        session.add(summary)
        session.flush()
    return summary
