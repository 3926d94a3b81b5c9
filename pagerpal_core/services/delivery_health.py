"""Delivery health people can see: failed paging, people nobody can reach, channels that fail.

Four readings of the notifications table, all computed here so the dashboard, the incident
page, the user page, `/settings` and `/metrics` say the same thing:

- **paging failed**: a triggered incident whose every page in its current round ended failed
  (`undeliverable`, `failed`, `exhausted`) and nothing is still on its way. The current round
  is the incident's current paging pass and escalation round at its highest level paged.
- **unreachable on-call people**: anyone on call now or within 24 hours who has no enabled
  contact method, or whose methods failed in the last 30 days with none delivering since.
- **last outcome per contact method**: its newest page (test pages included).
- **degraded channels**: a channel whose recent sends mostly failed.

"Send test" on a contact method writes one `test` row to the outbox, so it takes exactly the
path of a real page (worker, provider, receipts) and its outcome shows like one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from pagerpal_core.errors import Invalid
from pagerpal_core.models import ContactMethod, Incident, Notification, Schedule, User
from pagerpal_core.services.oncall import shifts_between
from pagerpal_core.services.sample_pages import TEST_SUBJECT, sample_page_body
from pagerpal_core.wakeup import notify_new_work

FAILED = ("undeliverable", "failed", "exhausted")
SUCCEEDED = ("sent", "delivered")
ON_CALL_HORIZON = timedelta(hours=24)
DAY = timedelta(days=1)
HISTORY = timedelta(days=30)
# A channel is degraded when, among its sends of the last DEGRADED_WINDOW, at least
# DEGRADED_MIN_FAILURES failed and failures are at least half: one bad number is not an outage.
DEGRADED_WINDOW = timedelta(hours=1)
DEGRADED_MIN_FAILURES = 3
CHANNEL_NAMES = {"sms": "SMS", "whatsapp": "WhatsApp", "email": "Email", "webhook": "Webhook"}


def _round_prefix(incident: Incident) -> str:
    return f"inc{incident.id}:g{incident.page_generation}:r{incident.escalation_round}:"


def paging_failed_ids(session: Session, incidents: Iterable[Incident] | None = None) -> set[int]:
    """Ids of triggered incidents (of `incidents`, or all) whose every current-round page failed."""
    if incidents is None:
        incidents = session.scalars(select(Incident).where(Incident.status == "triggered"))
    by_id = {i.id: i for i in incidents if i.status == "triggered"}
    if not by_id:
        return set()
    rows = session.execute(
        select(Notification.incident_id, Notification.round_key, Notification.escalation_level,
               Notification.status)
        .where(Notification.incident_id.in_(by_id), Notification.kind == "page",
               Notification.round_key.is_not(None), Notification.status != "cancelled"))
    # incident id -> (highest level seen in the current round, statuses at that level)
    latest: dict[int, tuple[int, list[str]]] = {}
    for incident_id, key, level, status in rows:
        if not key.startswith(_round_prefix(by_id[incident_id])):
            continue  # an earlier pass or round: what happened then is not "now"
        level = level or 0
        best = latest.get(incident_id)
        if best is None or level > best[0]:
            latest[incident_id] = (level, [status])
        elif level == best[0]:
            best[1].append(status)
    return {incident_id for incident_id, (_, statuses) in latest.items() if all(s in FAILED for s in statuses)}


def is_paging_failed(session: Session, incident: Incident) -> bool:
    """True when every page of `incident`'s current round failed (see paging_failed_ids)."""
    return incident.id in paging_failed_ids(session, [incident])


# --- contact methods --------------------------------------------------------------------------

def _pages_of(session: Session, methods: list[ContactMethod], since: datetime | None = None) -> list[Notification]:
    """Pages (and test pages) to `methods`, newest first: by contact method, or by address for
    older rows written without one."""
    if not methods:
        return []
    # Rows without a contact method: pages written before they carried one, and sample pages
    # (user_id NULL) sent to the same address.
    by_address = [and_(Notification.contact_method_id.is_(None),
                       or_(Notification.user_id == m.user_id, Notification.user_id.is_(None)),
                       Notification.channel == m.channel, Notification.destination == m.destination)
                  for m in methods]
    query = select(Notification).where(or_(Notification.contact_method_id.in_([m.id for m in methods]), *by_address))
    if since is not None:
        query = query.where(Notification.updated_at >= since)
    return list(session.scalars(query.order_by(Notification.id.desc())))


def _method_of(notification: Notification, methods: list[ContactMethod]) -> ContactMethod | None:
    for method in methods:
        if notification.contact_method_id == method.id or (
                notification.contact_method_id is None and notification.user_id in (method.user_id, None)
                and notification.channel == method.channel and notification.destination == method.destination):
            return method
    return None


def last_outcomes(session: Session, methods: list[ContactMethod]) -> dict[int, Notification]:
    """Each contact method's newest page or test page (methods never paged are absent)."""
    out: dict[int, Notification] = {}
    for notification in _pages_of(session, methods):
        method = _method_of(notification, methods)
        if method is not None:
            out.setdefault(method.id, notification)
    return out


def outcome_text(notification: Notification | None) -> str:
    """One line for a contact method's last outcome: `delivered 02:10 UTC (test)`."""
    if notification is None:
        return "never paged"
    at = notification.delivered_at or notification.sent_at or notification.updated_at
    when = at.strftime("%Y-%m-%d %H:%M UTC") if at else ""
    kind = " (test)" if notification.kind == "test" else ""
    text = f"{notification.status} {when}{kind}".strip()
    if notification.status in FAILED and notification.last_error:
        text += f": {notification.last_error[:120]}"
    return text


def contact_outcomes(session: Session, methods: list[ContactMethod]) -> dict[int, tuple[str, str]]:
    """contact method id -> (last status or "never", one line saying how its last page went)."""
    last = last_outcomes(session, methods)
    return {m.id: (last[m.id].status if m.id in last else "never", outcome_text(last.get(m.id))) for m in methods}


def send_test_page(session: Session, method: ContactMethod, *, base_url: str, now: datetime) -> Notification:
    """Queue one `test` page to `method` through the outbox; flushes, the caller commits.

    Raises Invalid for a disabled method (a test of a method that is never paged proves nothing).
    """
    if not method.enabled:
        raise Invalid("cannot send a test to a disabled contact method", fields={"enabled": "is off"})
    notification = Notification(
        incident_id=None, user_id=method.user_id, contact_method_id=method.id, kind="test",
        channel=method.channel, destination=method.destination, dedup_key=None, subject=TEST_SUBJECT,
        body=sample_page_body(method.channel, base_url), status="pending", attempts=0,
        next_attempt_at=now, created_at=now, updated_at=now)
    session.add(notification)
    session.flush()
    notify_new_work(session)
    return notification


# --- on-call people without a working channel ------------------------------------------------

@dataclass
class ReachWarning:
    """An on-call person paging may not reach, and why, in one line."""

    user: User
    text: str
    failing: list[tuple[str, datetime]] = field(default_factory=list)


def _failing_since(pages: list[Notification]) -> datetime | None:
    """When this method's current run of failures began (None if its newest page did not fail)."""
    since = None
    for page in pages:  # newest first
        if page.status in SUCCEEDED:
            break
        if page.status in FAILED:
            since = page.first_attempt_at or page.sent_at or page.updated_at
    return since


def reach_warning(session: Session, user: User, *, now: datetime) -> ReachWarning | None:
    """Why `user` may not be reachable, or None: no enabled contact method, or failures in the last
    30 days on their methods and no successful page on any of them since then."""
    enabled = [m for m in user.contact_methods if m.enabled]
    if not enabled:
        return ReachWarning(user, f"{user.name}: on call with no enabled contact method")
    pages = _pages_of(session, enabled, since=now - HISTORY)
    if not pages or any(p.status in SUCCEEDED for p in pages):
        return None
    failing = []
    for method in enabled:
        since = _failing_since([p for p in pages if _method_of(p, enabled) is method])
        if since is not None:
            failing.append((CHANNEL_NAMES.get(method.channel, method.channel), since))
    if not failing:
        return None
    failing.sort(key=lambda item: item[1])
    # Within the last day the time says enough ("since 02:10"); older runs name the day too.
    parts = ", ".join(f"{name} failing since {since.strftime('%H:%M' if now - since < DAY else '%b %d %H:%M')}"
                      for name, since in failing)
    others = len(enabled) - len(failing)
    tail = "no other channel" if others == 0 else "no other channel delivered in 30 days"
    return ReachWarning(user, f"{user.name}: {parts} (UTC), {tail}", failing)


def on_call_soon(session: Session, *, now: datetime, horizon: timedelta = ON_CALL_HORIZON) -> list[User]:
    """Everyone holding a shift in [now, now + horizon) in any schedule, by name."""
    seen: dict[int, User] = {}
    for schedule in session.scalars(select(Schedule).order_by(Schedule.id)):
        for shift in shifts_between(session, schedule, now, now + horizon):
            if shift.user is not None and shift.user.active:
                seen.setdefault(shift.user_id, shift.user)
    return sorted(seen.values(), key=lambda u: (u.name.lower(), u.id))


def reach_warnings(session: Session, *, now: datetime) -> list[ReachWarning]:
    """A warning for each person on call now or within 24 h whom paging may not reach."""
    users = on_call_soon(session, now=now)
    if users:
        session.scalars(select(User).where(User.id.in_([u.id for u in users]))
                        .options(selectinload(User.contact_methods))).all()
    return [w for w in (reach_warning(session, user, now=now) for user in users) if w is not None]


# --- channels --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChannelDelivery:
    """How a channel's recent sends went: `degraded` when most of them failed."""

    channel: str
    attempted: int
    failed: int
    degraded: bool
    summary: str


def channel_delivery(session: Session, channels: Iterable[str], *, now: datetime,
                     window: timedelta = DEGRADED_WINDOW) -> dict[str, ChannelDelivery]:
    """Each channel's sends first attempted in the last `window`: how many, how many failed.

    A page still retrying after an error counts as failing: during an outage nothing ends yet.
    """
    out = {}
    rows = session.execute(
        select(Notification.channel, Notification.status, Notification.last_error)
        .where(Notification.first_attempt_at >= now - window, Notification.channel.in_(list(channels))))
    tally: dict[str, list[int]] = {}
    for channel, status, error in rows:
        counts = tally.setdefault(channel, [0, 0])
        failing = status in FAILED or (status in ("pending", "sending") and bool(error))
        if status in SUCCEEDED or failing:
            counts[0] += 1
            counts[1] += int(failing)
    for channel in channels:
        attempted, failed = tally.get(channel, [0, 0])
        degraded = failed >= DEGRADED_MIN_FAILURES and failed * 2 >= attempted
        minutes = int(window.total_seconds() // 60)
        summary = (f"degraded: {failed} of {attempted} sends in the last {minutes} min failed" if degraded
                   else f"{attempted - failed} of {attempted} sends in the last {minutes} min succeeded"
                   if attempted else f"no sends in the last {minutes} min")
        out[channel] = ChannelDelivery(channel, attempted, failed, degraded, summary)
    return out
