"""The end-to-end self-test: the rules and records behind `flask pagerpal self-test` and the worker's step.

One run (driven by pagerpal_worker/steps/self_test.py, which does the outside I/O):

1. `prepare_self_test` makes sure the dedicated internal alert source `pagerpal-self-test`
   exists (no policy: it pages nobody by itself) and issues it a fresh key for this run only;
2. the worker POSTs a synthetic alert to the web's real ingestion URL with that key — the
   same path, authentication, rate limit and incident insert any monitoring system uses;
3. `queue_self_test_page` writes one outbox row for the incident to SELF_TEST_DESTINATION;
4. the worker's real dispatch sends it through the configured provider;
5. the worker POSTs the recovery, which resolves the incident through ingestion again;
6. `record_self_test` stores the outcome and duration in the `app_state` row `self_test`.
   A failure opens (once) an incident on the admins' policy — SELF_TEST_POLICY_ID, else the
   policy with the lowest id — and the next success resolves it. `check_overdue` does the
   same when no run has succeeded for two intervals (runs that hang or never happen).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagerpal_core.models import AlertSource, AppState, EscalationPolicy, Incident, Notification
from pagerpal_core.models.incidents import OPEN_STATUSES
from pagerpal_core.security import mask_destination
from pagerpal_core.services import incidents as incident_actions
from pagerpal_core.services.alert_sources import (
    create_alert_source,
    regenerate_alert_source_key,
    set_alert_source_active,
)
from pagerpal_core.services.audit import audit_suppressed
from pagerpal_core.services.timeline import record_event
from pagerpal_core.timeutil import parse_iso
from pagerpal_core.wakeup import notify_new_work

STATE_KEY = "self_test"
SOURCE_NAME = "pagerpal-self-test"
EXTERNAL_ID_PREFIX = "pagerpal-self-test-"
# The incident a failed or overdue self-test opens; at most one is open at a time.
FAILURE_EXTERNAL_ID = "pagerpal-self-test-failed"
TITLE = "PagerPal end-to-end self-test"
ACTOR = "self-test"
# A run that has not succeeded for this many intervals is overdue.
OVERDUE_INTERVALS = 2


def self_test_enabled(settings) -> bool:
    """On when SELF_TEST_INTERVAL_MINUTES > 0 and a destination is configured."""
    return settings.self_test_interval_minutes > 0 and bool(settings.self_test_destination)


@dataclass
class SelfTestState:
    """The last run, as stored in app_state and shown on the dashboard and /settings."""

    last_run_at: datetime | None = None
    ok: bool | None = None
    duration_ms: float | None = None
    error: str | None = None
    incident_id: int | None = None
    last_ok_at: datetime | None = None
    failure_incident_id: int | None = None

    def as_dict(self) -> dict:
        """JSON-ready."""
        return {"last_run_at": self.last_run_at.isoformat() if self.last_run_at else None, "ok": self.ok,
                "duration_ms": self.duration_ms, "error": self.error, "incident_id": self.incident_id,
                "last_ok_at": self.last_ok_at.isoformat() if self.last_ok_at else None,
                "failure_incident_id": self.failure_incident_id}

    def line(self, now: datetime) -> str:
        """"last end-to-end page: 2 min ago, 180 ms" (or why the last one failed)."""
        if self.last_run_at is None:
            return "no end-to-end self-test has run yet"
        ago = _ago(now - self.last_run_at)
        if self.ok:
            return f"last end-to-end page: {ago} ago, {self.duration_ms:.0f} ms"
        return f"last end-to-end self-test FAILED {ago} ago: {self.error}"


def _ago(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _when(value) -> datetime | None:
    return parse_iso(value) if value else None


def read_self_test(session: Session) -> SelfTestState | None:
    """The stored state (None before the first run, or when the row is unreadable)."""
    row = session.get(AppState, STATE_KEY)
    if row is None:
        return None
    try:
        data = json.loads(row.value)
        return SelfTestState(last_run_at=_when(data.get("last_run_at")), ok=data.get("ok"),
                             duration_ms=data.get("duration_ms"), error=data.get("error"),
                             incident_id=data.get("incident_id"), last_ok_at=_when(data.get("last_ok_at")),
                             failure_incident_id=data.get("failure_incident_id"))
    except (ValueError, TypeError, AttributeError):
        return None


def _store(session: Session, state: SelfTestState, now: datetime) -> None:
    value = json.dumps(state.as_dict(), separators=(",", ":"))[:1000]
    row = session.get(AppState, STATE_KEY, populate_existing=True)
    if row is None:
        try:
            with session.begin_nested():
                session.add(AppState(key=STATE_KEY, value=value, created_at=now))
            return
        except IntegrityError:  # written by another instance a moment ago
            row = session.get(AppState, STATE_KEY, populate_existing=True)
    row.value = value
    session.flush()


@dataclass
class Prepared:
    """The internal source and the key issued to it for this run."""

    source_id: int
    key: str
    external_id: str


def prepare_self_test(session: Session, *, now: datetime) -> Prepared:
    """Ensure the internal source exists (active, no policy) and issue it a fresh key; the caller commits.

    The key is never stored in clear and changes every run, so it is useless once the run ends.
    """
    source = session.scalars(select(AlertSource).where(AlertSource.name == SOURCE_NAME)).first()
    if source is None:
        issued = create_alert_source(session, name=SOURCE_NAME, kind="generic", policy_id=None, now=now)
        source, key = issued.source, issued.key
    else:
        # A new key every run is routine, not a configuration change: kept out of the audit log.
        with audit_suppressed(session):
            key = regenerate_alert_source_key(session, source, now=now).key
    if not source.active:
        set_alert_source_active(session, source, True, now=now)
    session.flush()
    return Prepared(source.id, key, f"{EXTERNAL_ID_PREFIX}{now:%Y%m%dT%H%M%S%f}")


def queue_self_test_page(session: Session, incident_id: int, *, channel: str, destination: str,
                         now: datetime) -> int:
    """Write the one outbox row of a self-test incident; returns its id. The caller commits."""
    incident = session.get(Incident, incident_id)
    body = (f"PagerPal self-test #{incident_id}: an alert went through ingestion, the outbox and the {channel} "
            "sender. No action needed.")
    row = Notification(incident_id=incident_id, user_id=None, channel=channel, destination=destination,
                       dedup_key=f"self-test:{incident_id}", kind="page", subject=TITLE, body=body,
                       status="pending", attempts=0, next_attempt_at=now, created_at=now, updated_at=now)
    session.add(row)
    # The internal source routes to no policy: the self-test is its routing, so it is not "unrouted".
    incident.unrouted = False
    session.flush()
    record_event(session, incident, "self_test", f"Self-test: paging the test destination ({channel} to "
                 f"{mask_destination(destination)})", actor=ACTOR, detail={"notification_id": row.id}, now=now)
    notify_new_work(session)
    return row.id


def notification_status(session: Session, notification_id: int) -> Notification | None:
    """The self-test page as it is now (re-read)."""
    return session.get(Notification, notification_id, populate_existing=True)


def admins_policy(session: Session, settings) -> EscalationPolicy | None:
    """The policy a failed self-test pages: SELF_TEST_POLICY_ID, else the policy with the lowest id."""
    if settings.self_test_policy_id:
        policy = session.get(EscalationPolicy, settings.self_test_policy_id)
        if policy is not None:
            return policy
    return session.scalars(select(EscalationPolicy).order_by(EscalationPolicy.id).limit(1)).first()


def _open_failure_incident(session: Session, state: SelfTestState, reason: str, *, settings, now: datetime,
                           base_url: str) -> int | None:
    if state.failure_incident_id is not None:
        existing = session.get(Incident, state.failure_incident_id)
        if existing is not None and existing.status in OPEN_STATUSES:
            record_event(session, existing, "self_test", f"Self-test failed again: {reason}", actor=ACTOR, now=now)
            return existing.id
    policy = admins_policy(session, settings)
    incident = Incident(
        alert_source_id=None, external_id=FAILURE_EXTERNAL_ID, title=f"PagerPal self-test failed: {reason}"[:500],
        description="The scheduled end-to-end self-test (synthetic alert → ingestion → outbox → provider) did "
                    "not complete. Pages may not be reaching people. The next successful self-test resolves "
                    "this incident.",
        severity="critical", status="triggered", policy_id=policy.id if policy else None, details={"reason": reason},
        links=[], current_level=0, escalation_round=0, page_generation=0, unrouted=False, occurrence_count=1,
        last_seen_at=now, repeats_unlogged=0, created_at=now, updated_at=now)
    session.add(incident)
    session.flush()
    incident_actions.trigger_incident(session, incident, actor=ACTOR, now=now, base_url=base_url,
                                      detail={"reason": reason})
    return incident.id


def record_self_test(session: Session, *, ok: bool, duration_ms: float | None, error: str | None,
                     incident_id: int | None, settings, now: datetime, base_url: str) -> SelfTestState:
    """Store one run's outcome; a failure opens (or adds to) the failure incident, a success resolves it.

    The caller commits.
    """
    state = read_self_test(session) or SelfTestState()
    state.last_run_at, state.ok, state.incident_id = now, ok, incident_id
    state.duration_ms = round(duration_ms, 1) if duration_ms is not None else None
    state.error = (error or None) if not ok else None
    if ok:
        state.last_ok_at = now
        if state.failure_incident_id is not None:
            failure = session.get(Incident, state.failure_incident_id)
            if failure is not None and failure.status in OPEN_STATUSES:
                incident_actions.resolve_incident(session, failure, actor=ACTOR, now=now,
                                                  note="the end-to-end self-test passed again")
            state.failure_incident_id = None
    else:
        state.failure_incident_id = _open_failure_incident(session, state, error or "unknown error",
                                                           settings=settings, now=now, base_url=base_url)
    _store(session, state, now)
    return state


def check_overdue(session: Session, *, settings, now: datetime, base_url: str) -> int | None:
    """Open the failure incident when no run has succeeded for OVERDUE_INTERVALS intervals.

    Returns the incident id when it opened one; the caller commits. A fresh installation (no
    run yet) is not overdue: the first run is due at once anyway.
    """
    state = read_self_test(session)
    if state is None or state.last_run_at is None:
        return None
    since = state.last_ok_at or state.last_run_at
    limit = timedelta(minutes=settings.self_test_interval_minutes * OVERDUE_INTERVALS)
    if now - since <= limit:
        return None
    if state.failure_incident_id is not None:
        existing = session.get(Incident, state.failure_incident_id)
        if existing is not None and existing.status in OPEN_STATUSES:
            return None
    state.failure_incident_id = _open_failure_incident(
        session, state, f"overdue: no successful run since {since:%Y-%m-%d %H:%M} UTC", settings=settings, now=now,
        base_url=base_url)
    _store(session, state, now)
    return state.failure_incident_id


def is_due(state: SelfTestState | None, *, settings, now: datetime) -> bool:
    """Whether the next run is due: never ran, or the last run is an interval old."""
    if state is None or state.last_run_at is None:
        return True
    return now - state.last_run_at >= timedelta(minutes=settings.self_test_interval_minutes)
