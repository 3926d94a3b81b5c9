"""Reading incidents: search with filters and pages, "mine", the dashboard summary, an incident's records.

The UI and the API both answer searches through `parse_incident_filters` and
`search_incidents`, so the same query string gives the same incidents on both surfaces:
the same filter names (`status` also takes "open" and "all"; `q` and `text` are one
filter), the same case-insensitive substring match on title and alert id, the same
refusal of text PostgreSQL cannot hold (NUL characters are Invalid, not a database error).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from pagerpal_core.errors import Invalid
from pagerpal_core.models import AlertSource, Incident, IncidentEvent, Notification, User
from pagerpal_core.models.incidents import OPEN_STATUSES, SEVERITIES, STATUSES
from pagerpal_core.services.delivery_health import paging_failed_ids, reach_warnings
from pagerpal_core.services.maintenance import active_windows
from pagerpal_core.services.provider_health import provider_health, sending_mode
from pagerpal_core.services.self_test import SelfTestState, read_self_test
from pagerpal_core.services.system import list_job_health
from pagerpal_core.services.validation import raise_if, text_problem
from pagerpal_core.timeutil import parse_iso

MAX_TEXT_FILTER = 200
MAX_PAGE_SIZE = 200
# Status filter words beyond the statuses themselves.
STATUS_ALIASES = {"open": OPEN_STATUSES, "all": STATUSES}
STATUS_CHOICES = ("open", *STATUSES, "all")

SEVERITY_RANK = case({s: i for i, s in enumerate(SEVERITIES)}, value=Incident.severity)  # critical = 0
STATUS_RANK = case({s: i for i, s in enumerate(STATUSES)}, value=Incident.status)
# Sort keys; "-" in front means descending. Ties break on id, so keyset pages stay stable.
SORTS = {"created_at": Incident.created_at, "updated_at": Incident.updated_at,
         "last_seen_at": Incident.last_seen_at, "severity": SEVERITY_RANK, "status": STATUS_RANK}
SORT_CHOICES = tuple(SORTS) + tuple("-" + s for s in SORTS)


@dataclass(frozen=True)
class IncidentFilters:
    """What to search for; empty values do not filter."""

    statuses: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    team_id: int | None = None
    source_id: int | None = None
    assignee_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str = ""


@dataclass(frozen=True)
class PageRequest:
    """Which page: `number` (1-based, with a total count) or keyset `after` an incident id."""

    limit: int = 50
    sort: str = "-created_at"
    after: int | None = None
    number: int | None = None


@dataclass
class IncidentPage:
    """One page of a search. `total`/`pages` are counted for numbered pages only."""

    items: list[Incident]
    has_more: bool
    number: int = 1
    total: int | None = None
    pages: int = 1


def _id_arg(args: Mapping, name: str, errors: dict) -> int | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        errors[name] = "must be an id (integer)"
        return None
    return int(raw)


def _choices_arg(args: Mapping, name: str, choices: tuple, errors: dict, aliases: dict | None = None) -> tuple:
    """`?name=a,b` as a tuple of allowed values (aliases expanded); "" means no filter."""
    raw = args.get(name) or ""
    values = [v.strip() for v in raw.split(",") if v.strip()]
    allowed = tuple(aliases or ()) + choices
    if any(v not in allowed for v in values):
        errors[name] = f"must be one or more (comma-separated) of {', '.join(allowed)}"
        return ()
    out: list[str] = []
    for value in values:
        for item in (aliases or {}).get(value, (value,)):
            if item not in out:
                out.append(item)
    return tuple(out)


def _instant_arg(args: Mapping, name: str, errors: dict) -> datetime | None:
    raw = args.get(name)
    if not raw:
        return None
    try:
        return parse_iso(raw)
    except (ValueError, TypeError, OverflowError):
        errors[name] = "must be an ISO-8601 timestamp such as 2025-03-09T09:00:00Z"
        return None


def parse_incident_filters(args: Mapping[str, str], *, default_status: str | None = None) -> IncidentFilters:
    """Filters from query-string values (strings); Invalid names every bad one.

    Keys: status (triggered, acknowledged, resolved, open, all; comma-separated), severity
    (comma-separated), team, source, assignee (ids), since, until (ISO-8601, on created_at),
    q or text (substring of title or alert id). `default_status` applies when status is absent.
    """
    errors: dict = {}
    raw_status = args.get("status")
    if raw_status is None and default_status is not None:
        args = {**args, "status": default_status}
    statuses = _choices_arg(args, "status", STATUSES, errors, aliases=STATUS_ALIASES)
    if set(statuses) == set(STATUSES):
        statuses = ()  # every status: no filter
    severities = _choices_arg(args, "severity", SEVERITIES, errors)
    text_key = "text" if args.get("text") is not None else "q"
    text = args.get(text_key) or ""
    if len(text) > MAX_TEXT_FILTER:
        errors[text_key] = f"must be at most {MAX_TEXT_FILTER} characters"
    elif text_problem(text):
        errors[text_key] = text_problem(text)
    filters = IncidentFilters(
        statuses=statuses, severities=severities, team_id=_id_arg(args, "team", errors),
        source_id=_id_arg(args, "source", errors), assignee_id=_id_arg(args, "assignee", errors),
        since=_instant_arg(args, "since", errors), until=_instant_arg(args, "until", errors), text=text.strip())
    raise_if(errors, "invalid filter")
    return filters


def _filtered(filters: IncidentFilters):
    query = select(Incident)
    if filters.statuses:
        query = query.where(Incident.status.in_(filters.statuses))
    if filters.severities:
        query = query.where(Incident.severity.in_(filters.severities))
    if filters.team_id is not None:
        query = query.where(Incident.team_id == filters.team_id)
    if filters.source_id is not None:
        query = query.where(Incident.alert_source_id == filters.source_id)
    if filters.assignee_id is not None:
        query = query.where(Incident.assignee_id == filters.assignee_id)
    if filters.since is not None:
        query = query.where(Incident.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(Incident.created_at < filters.until)
    if filters.text:
        # Plain substring match, case-insensitive the same way on both backends (lower() on
        # each side; ILIKE would differ); LIKE wildcards in the text are escaped.
        escaped = filters.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        needle = f"%{escaped}%"
        query = query.where(or_(func.lower(Incident.title).like(needle, escape="\\"),
                                func.lower(Incident.external_id).like(needle, escape="\\")))
    return query


def search_incidents(session: Session, filters: IncidentFilters, page: PageRequest) -> IncidentPage:
    """Incidents matching `filters`, one page of them, sorted by `page.sort` (ties on id).

    Numbered pages (the UI) count the total and clamp the number into range; keyset pages
    (the API) start after the incident `page.after`, so arrivals never shift or repeat rows.
    An unknown sort, a bad limit or an `after` that names no incident is Invalid.
    """
    errors: dict = {}
    if page.sort not in SORT_CHOICES:
        errors["sort"] = f"must be one of {', '.join(SORT_CHOICES)}"
    if not 1 <= page.limit <= MAX_PAGE_SIZE:
        errors["limit"] = f"must be an integer from 1 to {MAX_PAGE_SIZE}"
    raise_if(errors, "invalid filter")
    query = _filtered(filters).options(selectinload(Incident.alert_source), selectinload(Incident.assignee))
    descending = page.sort.startswith("-")
    key = SORTS[page.sort.lstrip("-")]
    order = (key.desc(), Incident.id.desc()) if descending else (key.asc(), Incident.id.asc())
    if page.number is not None:
        total = session.scalar(select(func.count()).select_from(_filtered(filters).subquery()))
        pages = max(1, -(-total // page.limit))
        number = min(max(1, page.number), pages)
        items = list(session.scalars(query.order_by(*order).limit(page.limit).offset((number - 1) * page.limit)))
        return IncidentPage(items=items, has_more=number < pages, number=number, total=total, pages=pages)
    if page.after is not None:
        anchor = session.execute(select(key.label("k"), Incident.id).where(Incident.id == page.after)).first() \
            if 0 < page.after < 2**31 else None
        if anchor is None:
            raise Invalid("invalid pagination", fields={"after": f"no incident with id {page.after}"})
        beyond = (lambda col, value: col < value) if descending else (lambda col, value: col > value)
        query = query.where(or_(beyond(key, anchor.k), and_(key == anchor.k, beyond(Incident.id, page.after))))
    rows = list(session.scalars(query.order_by(*order).limit(page.limit + 1)))
    return IncidentPage(items=rows[:page.limit], has_more=len(rows) > page.limit)


def filter_options(session: Session) -> tuple[list[AlertSource], list[User]]:
    """The alert sources and people the incident list's filter menus offer, by name."""
    sources = list(session.scalars(select(AlertSource).order_by(AlertSource.name)))
    people = list(session.scalars(select(User).order_by(User.name, User.id)))
    return sources, people


def triage_order(incidents: list[Incident]) -> list[Incident]:
    """Triggered first, then by severity, newest first: what needs a person now comes first."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(incidents, key=lambda i: (i.status != "triggered", rank.get(i.severity, 9),
                                            -i.created_at.timestamp(), -i.id))


def my_incidents(session: Session, user: User, *, limit: int = 200) -> list[Incident]:
    """Open incidents assigned to `user`, or triggered and paging them (a page to them not cancelled)."""
    paging_me = exists().where(Notification.incident_id == Incident.id, Notification.user_id == user.id,
                               Notification.status != "cancelled")
    rows = session.scalars(
        select(Incident).where(Incident.status.in_(OPEN_STATUSES),
                               or_(Incident.assignee_id == user.id,
                                   and_(Incident.status == "triggered", paging_me)))
        .options(selectinload(Incident.alert_source), selectinload(Incident.assignee))
        .order_by(Incident.created_at.desc(), Incident.id.desc()).limit(limit))
    return triage_order(list(rows))


@dataclass
class IncidentRecords:
    """What an incident page shows besides the incident: timeline, pages, and the people named."""

    events: list[IncidentEvent]
    notifications: list[Notification]
    users: dict[int, User] = field(default_factory=dict)


def incident_records(session: Session, incident: Incident, *, newest_first: bool = True) -> IncidentRecords:
    """The incident's timeline and notifications, and every user they or the incident name."""
    direction = (lambda col: col.desc()) if newest_first else (lambda col: col.asc())
    events = list(session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)
                                  .order_by(direction(IncidentEvent.id))))
    notifications = list(session.scalars(select(Notification).where(Notification.incident_id == incident.id)
                                         .order_by(direction(Notification.id))))
    ids = {n.user_id for n in notifications} | {e.actor_user_id for e in events} | {
        e.recorded_by_id for e in events} | {
        incident.assignee_id, incident.acknowledged_by_id, incident.resolved_by_id, incident.snoozed_by_id}
    ids.discard(None)
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return IncidentRecords(events=events, notifications=notifications, users=users)


def incident_notifications(session: Session, incident: Incident) -> list[Notification]:
    """The incident's pages, oldest first."""
    return list(session.scalars(select(Notification).where(Notification.incident_id == incident.id)
                                .order_by(Notification.id)))


DASHBOARD_LIMIT = 200


@dataclass(frozen=True)
class SystemWarning:
    """A reason paging may not work: `level` "bad" or "warn"; `where` names the page to fix it on."""

    level: str
    text: str
    where: str = "settings"


@dataclass
class DashboardSummary:
    """The dashboard: open incidents in triage order, counts by state, and system warnings."""

    incidents: list[Incident]
    counts: dict[str, int]
    unrouted: int
    exhausted: int
    warnings: list[SystemWarning]
    limit: int
    # Maintenance windows in force now, and the last end-to-end self-test (None before the first run).
    maintenance: list = field(default_factory=list)
    self_test: SelfTestState | None = None
    # Delivery health (services/delivery_health): triggered incidents whose every page in the
    # current round failed, and on-call people (now or within 24 h) paging may not reach.
    paging_failed: set[int] = field(default_factory=set)
    reach_warnings: list = field(default_factory=list)


def system_warnings(session: Session, settings, *, now: datetime) -> list[SystemWarning]:
    """Configuration and worker problems, most serious first."""
    warnings = []
    jobs = list_job_health(session, now=now)
    if not jobs:
        warnings.append(SystemWarning("bad", "No worker has reported yet: nothing is sent or escalated until "
                                "pagerpal-worker runs."))
    for health in jobs:
        if health.stale:
            beat = health.job.last_started_at
            last = beat.strftime("%H:%M:%S UTC") if beat else "never"
            warnings.append(SystemWarning("bad", f"Worker job {health.job.name} is stale (last run {last})."))
    if sending_mode(settings) == "safe":
        warnings.append(SystemWarning("warn", "Sending is disabled (safe mode): pages are recorded as suppressed "
                                "and nobody is called."))
    else:
        for channel in provider_health(settings):
            if not channel.configured:
                warnings.append(SystemWarning("bad", f"{channel.channel} is not configured (missing "
                                        f"{', '.join(channel.missing)}); pages on it fail."))
    return warnings


def dashboard_summary(session: Session, settings, *, now: datetime, limit: int = DASHBOARD_LIMIT) -> DashboardSummary:
    """Open incidents (the newest `limit`, triggered first, then by severity and age), counts, warnings.

    `exhausted` counts triggered incidents whose every level was paged without an
    acknowledge: nobody else will be paged for them.
    """
    incidents = list(session.scalars(
        select(Incident).where(Incident.status.in_(OPEN_STATUSES))
        .options(selectinload(Incident.alert_source), selectinload(Incident.assignee))
        .order_by(Incident.created_at.desc(), Incident.id.desc()).limit(limit)))
    counts = dict(session.execute(select(Incident.status, func.count()).where(
        Incident.status.in_(OPEN_STATUSES)).group_by(Incident.status)).all())
    unrouted = session.scalar(select(func.count(Incident.id)).where(
        Incident.status.in_(OPEN_STATUSES), Incident.unrouted.is_(True)))
    exhausted = session.scalar(select(func.count(Incident.id)).where(
        Incident.status == "triggered", Incident.next_escalation_at.is_(None), Incident.unrouted.is_(False),
        Incident.policy_id.is_not(None), Incident.current_level > 0))
    return DashboardSummary(incidents=triage_order(incidents), counts=counts, unrouted=unrouted or 0,
                            exhausted=exhausted or 0, warnings=system_warnings(session, settings, now=now),
                            maintenance=active_windows(session, now=now), self_test=read_self_test(session),
                            limit=limit, paging_failed=paging_failed_ids(session),
                            reach_warnings=reach_warnings(session, now=now))
