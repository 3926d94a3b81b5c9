"""Heartbeat monitors (dead-man's switches): a job pings a secret URL; silence pages someone.

A monitor promises a ping every `interval_seconds`, with `grace_seconds` of slack. Its token
is `pph_` + 32 random bytes; only the SHA-256 and a display suffix are stored (as for alert
source keys), so the full ping URL is shown once, when the monitor is created.

States: `new` (never pinged: nothing is expected yet, as in healthchecks.io), `up` (pinging;
`expected_by` = last ping + interval + grace), `down` (the worker found it overdue and opened
its incident). The worker's `check_heartbeats` moves overdue `up` monitors to `down` and opens
one incident each, through the incident service, routed by the monitor's escalation policy —
so the timeline, paging and escalation are those of any alert. The next ping brings the
monitor back `up` and resolves that incident.

Exactly one incident per silence: only `up` monitors are checked and the check moves them to
`down` under the row lock (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises writers),
in the same transaction as the incident. A ping locks the same row, so a ping and a check
never both win: either the check sees the new deadline, or the ping sees `down` and resolves.

Pings are rate-limited per monitor by a token bucket kept in the monitor's row, updated
under that row lock; a refused or unknown ping writes nothing.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pagerpal_core.db import get_or_not_found, is_postgres, unique_or_conflict
from pagerpal_core.errors import NotFound, RateLimited
from pagerpal_core.logs import log_fields
from pagerpal_core.models import EscalationPolicy, HeartbeatMonitor, Incident
from pagerpal_core.models.incidents import OPEN_STATUSES
from pagerpal_core.security import sha256_hex
from pagerpal_core.services import incidents as incident_actions
from pagerpal_core.services.audit import record_audit, snapshot
from pagerpal_core.services.rate_limit import TOKEN_EPSILON, available_tokens
from pagerpal_core.services.timeline import record_event
from pagerpal_core.services.validation import UNSET, clean_int, clean_text, lookup, raise_if

log = logging.getLogger("pagerpal.heartbeats")
# What the audit log shows of a monitor (the token hash only to tell that it changed: it is masked).
HEARTBEAT_AUDIT_FIELDS = ("name", "interval_seconds", "grace_seconds", "policy_id", "token_hash")

TOKEN_PREFIX = "pph_"
TOKEN_BYTES = 32
SUFFIX_LENGTH = 4
MIN_INTERVAL_SECONDS = 10
MAX_INTERVAL_SECONDS = 31 * 24 * 3600
MAX_GRACE_SECONDS = 31 * 24 * 3600
MAX_NAME = 120
# Per-monitor ping bucket: a burst of 10, then one ping every 6 seconds. A job pings once per
# interval (at least 10 s), so only a runaway loop or someone hammering a leaked URL is refused.
PING_BUCKET_CAPACITY = 10
PING_REFILL_PER_SECOND = 1 / 6
# The external id of a monitor's incidents ("heartbeat-7"); they have no alert source.
EXTERNAL_ID_PREFIX = "heartbeat-"
FIELDS = ("name", "interval_seconds", "grace_seconds", "escalation_policy_id")


@dataclass
class IssuedHeartbeat:
    """A monitor with its full ping token, returned only by create."""

    monitor: HeartbeatMonitor
    token: str


@dataclass
class PingResult:
    """What one ping did: the monitor, its state before, and the incident it resolved (if any)."""

    monitor: HeartbeatMonitor
    previous_state: str
    resolved_incident_id: int | None = None


def hash_token(token: str) -> str:
    """The stored form of a ping token (its SHA-256 hex)."""
    return sha256_hex(token)


def _issue_token(monitor: HeartbeatMonitor) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    monitor.token_hash = hash_token(token)
    monitor.token_suffix = token[-SUFFIX_LENGTH:]
    return token


def mask_token(monitor: HeartbeatMonitor) -> str:
    """How a stored token is shown: prefix, ellipsis, last four characters."""
    return f"{TOKEN_PREFIX}…{monitor.token_suffix}"


def deadline(monitor: HeartbeatMonitor) -> datetime | None:
    """When an `up` monitor is declared missed: last ping + interval + grace (None otherwise)."""
    if monitor.last_ping_at is None:
        return None
    return monitor.last_ping_at + timedelta(seconds=monitor.interval_seconds + monitor.grace_seconds)


def _clean(session: Session, values: dict, errors: dict) -> dict:
    """Validate the given fields (any of FIELDS); returns the model's column values."""
    out = {}
    if "name" in values:
        out["name"] = clean_text(values["name"], "name", errors, max_len=MAX_NAME)
    if "interval_seconds" in values:
        out["interval_seconds"] = clean_int(values["interval_seconds"], "interval_seconds", errors,
                                            minimum=MIN_INTERVAL_SECONDS, maximum=MAX_INTERVAL_SECONDS)
    if "grace_seconds" in values:
        out["grace_seconds"] = clean_int(values["grace_seconds"], "grace_seconds", errors, minimum=0,
                                         maximum=MAX_GRACE_SECONDS)
    if "escalation_policy_id" in values:
        policy = lookup(session, EscalationPolicy, values["escalation_policy_id"], "escalation_policy_id",
                        errors, label="escalation policy")
        out["policy_id"] = policy.id if policy is not None else None
    return out


def list_heartbeats(session: Session) -> list[HeartbeatMonitor]:
    """Every monitor, by name."""
    return list(session.scalars(select(HeartbeatMonitor).order_by(HeartbeatMonitor.name)))


def get_heartbeat(session: Session, monitor_id: int) -> HeartbeatMonitor:
    """The monitor with `monitor_id`, or NotFound."""
    return get_or_not_found(session, HeartbeatMonitor, monitor_id, f"heartbeat monitor {monitor_id} not found")


def create_heartbeat(session: Session, *, name, interval_seconds, escalation_policy_id, grace_seconds=0,
                     now: datetime) -> IssuedHeartbeat:
    """Create a monitor (state `new`); the result holds the ping token, which is never readable again.

    interval 10 s to 31 days, grace 0 to 31 days, an existing policy; each bad field is named
    in one Invalid, a taken name is a Conflict.
    """
    errors: dict = {}
    values = _clean(session, {"name": name, "interval_seconds": interval_seconds, "grace_seconds": grace_seconds,
                              "escalation_policy_id": escalation_policy_id}, errors)
    raise_if(errors, "invalid heartbeat monitor")
    monitor = HeartbeatMonitor(**values, state="new", ping_count=0, created_at=now, updated_at=now)
    token = _issue_token(monitor)
    with unique_or_conflict(session, f"a heartbeat monitor named {values['name']!r} already exists",
                            fields={"name": "already in use"}):
        session.add(monitor)
    record_audit(session, action="heartbeat.created", object_type="heartbeat", object_id=monitor.id,
                 after=snapshot(monitor, *HEARTBEAT_AUDIT_FIELDS))
    return IssuedHeartbeat(monitor, token)


def update_heartbeat(session: Session, monitor: HeartbeatMonitor, *, now: datetime, name=UNSET,
                     interval_seconds=UNSET, grace_seconds=UNSET, escalation_policy_id=UNSET) -> HeartbeatMonitor:
    """Change name, interval, grace or policy; an `up` monitor's deadline follows the new timing."""
    given = {k: v for k, v in (("name", name), ("interval_seconds", interval_seconds),
                               ("grace_seconds", grace_seconds), ("escalation_policy_id", escalation_policy_id))
             if v is not UNSET}
    errors: dict = {}
    values = _clean(session, given, errors)
    raise_if(errors, "invalid heartbeat monitor")
    before = snapshot(monitor, *HEARTBEAT_AUDIT_FIELDS)
    with unique_or_conflict(session, f"a heartbeat monitor named {values.get('name')!r} already exists",
                            fields={"name": "already in use"}):
        for key, value in values.items():
            setattr(monitor, key, value)
        if monitor.state == "up":
            monitor.expected_by = deadline(monitor)
        monitor.updated_at = now
    record_audit(session, action="heartbeat.updated", object_type="heartbeat", object_id=monitor.id, before=before,
                 after=snapshot(monitor, *HEARTBEAT_AUDIT_FIELDS))
    return monitor


def delete_heartbeat(session: Session, monitor: HeartbeatMonitor) -> None:
    """Delete a monitor; an incident it opened stays (and is resolved by hand)."""
    before = snapshot(monitor, "id", *HEARTBEAT_AUDIT_FIELDS)
    session.delete(monitor)
    session.flush()
    record_audit(session, action="heartbeat.deleted", object_type="heartbeat", object_id=before["id"], before=before)


# --- pings --------------------------------------------------------------------------------

def ping_heartbeat(session: Session, token: str | None, *, now: datetime) -> PingResult:
    """Record a ping for the monitor whose token is `token`; resolves its open incident.

    NotFound for an unknown token and RateLimited past the monitor's bucket, both with
    nothing written. The lookup is by SHA-256 on a unique index, never a character-by-
    character comparison. The caller commits.
    """
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise NotFound("no heartbeat monitor has this ping URL")
    query = select(HeartbeatMonitor).where(HeartbeatMonitor.token_hash == hash_token(token))
    # The row lock orders this ping against the worker's check of the same monitor.
    monitor = session.scalars(query.with_for_update().execution_options(populate_existing=True)).first()
    if monitor is None:
        raise NotFound("no heartbeat monitor has this ping URL")
    available = available_tokens(monitor.rate_tokens, monitor.rate_updated_at, now=now,
                                 capacity=PING_BUCKET_CAPACITY, refill_per_second=PING_REFILL_PER_SECOND)
    if available < 1 - TOKEN_EPSILON:
        wait = max(1, int((1 - available) / PING_REFILL_PER_SECOND) + 1)
        raise RateLimited(f"heartbeat monitor {monitor.name!r} is pinged too often; retry in {wait} s",
                          retry_after=wait)
    monitor.rate_tokens = max(0.0, available - 1)
    # Only forward, so pings stamped slightly out of order never hand tokens back.
    monitor.rate_updated_at = max(now, monitor.rate_updated_at) if monitor.rate_updated_at else now
    previous = monitor.state
    monitor.last_ping_at = now
    monitor.ping_count = (monitor.ping_count or 0) + 1
    monitor.state = "up"
    monitor.expected_by = deadline(monitor)
    monitor.down_since = None
    monitor.updated_at = now
    session.flush()
    result = PingResult(monitor, previous)
    if previous == "down" and monitor.incident_id is not None:
        incident = session.get(Incident, monitor.incident_id)
        if incident is not None and incident.status in OPEN_STATUSES:
            actor = _actor(monitor)
            record_event(session, incident, "heartbeat_ping", f"Heartbeat {monitor.name!r} pinged again at "
                         f"{now:%H:%M} UTC", actor=actor, now=now, detail={"heartbeat_id": monitor.id})
            incident_actions.resolve_incident(session, incident, actor=actor, now=now,
                                              note="the heartbeat pinged again")
            result.resolved_incident_id = incident.id
    return result


# --- the worker's check --------------------------------------------------------------------

def _actor(monitor: HeartbeatMonitor) -> str:
    return f"heartbeat {monitor.name}"


def missed_title(monitor: HeartbeatMonitor, now: datetime) -> str:
    """"Heartbeat 'nightly-backup' missed: last ping 02:10 UTC" (with the date when not today)."""
    last = monitor.last_ping_at
    when = f"{last:%H:%M} UTC" if last.date() == now.date() else f"{last:%Y-%m-%d %H:%M} UTC"
    return f"Heartbeat {monitor.name!r} missed: last ping {when}"


def claim_overdue_heartbeats(session: Session, *, now: datetime, limit: int = 50) -> list[HeartbeatMonitor]:
    """Lock and return `up` monitors whose deadline has passed (SKIP LOCKED on PostgreSQL).

    A monitor being pinged right now is skipped; PostgreSQL re-checks the WHERE clause on a
    row committed meanwhile, so a monitor pinged a moment ago is no longer overdue.
    """
    query = (select(HeartbeatMonitor)
             .where(HeartbeatMonitor.state == "up", HeartbeatMonitor.expected_by < now)
             .order_by(HeartbeatMonitor.expected_by, HeartbeatMonitor.id).limit(limit)
             .execution_options(populate_existing=True))
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True, of=HeartbeatMonitor)
    return list(session.scalars(query))


def open_missed_incident(session: Session, monitor: HeartbeatMonitor, *, now: datetime,
                         base_url: str) -> Incident:
    """Mark a locked, overdue monitor `down` and open its incident, paged by its policy."""
    monitor.state = "down"
    monitor.down_since = now
    incident = Incident(
        alert_source_id=None, external_id=f"{EXTERNAL_ID_PREFIX}{monitor.id}", title=missed_title(monitor, now),
        description=f"No ping arrived within {monitor.interval_seconds} s + {monitor.grace_seconds} s grace. "
                    "The next ping resolves this incident.",
        severity="critical", status="triggered", policy_id=monitor.policy_id,
        details={"heartbeat_id": monitor.id, "heartbeat": monitor.name,
                 "last_ping_at": monitor.last_ping_at.isoformat(), "expected_by": monitor.expected_by.isoformat()},
        links=[], current_level=0, escalation_round=0, page_generation=0, unrouted=False, occurrence_count=1,
        last_seen_at=now, repeats_unlogged=0, created_at=now, updated_at=now)
    session.add(incident)
    session.flush()
    monitor.incident_id = incident.id
    monitor.updated_at = now
    incident_actions.trigger_incident(session, incident, actor=_actor(monitor), now=now, base_url=base_url,
                                      detail={"heartbeat_id": monitor.id,
                                              "expected_by": monitor.expected_by.isoformat()})
    return incident


def check_heartbeats(session: Session, *, now: datetime, base_url: str, limit: int = 50) -> list[int]:
    """The worker's heartbeat step: open one incident per overdue monitor; returns their ids.

    The caller commits. Each monitor runs in a savepoint, so one that fails is logged and
    tried again next cycle while the others still page.
    """
    opened = []
    for monitor in claim_overdue_heartbeats(session, now=now, limit=limit):
        try:
            with session.begin_nested():
                opened.append(open_missed_incident(session, monitor, now=now, base_url=base_url).id)
        except Exception:  # one broken monitor must not silence the others
            log.exception("heartbeat check failed", extra=log_fields(heartbeat_id=monitor.id))
    return opened


def heartbeat_state_label(monitor: HeartbeatMonitor) -> str:
    """How the UI names a state: waiting for the first ping, up, missed."""
    return {"new": "waiting for first ping", "up": "up", "down": "missed"}.get(monitor.state, monitor.state)

