"""Why was (or wasn't) an incident paged: its paging told as ordered steps, from PagerPal's own records.

`trace_incident` reads the incident, its timeline and its outbox rows and returns, in order:

- the alert source and the escalation policy chosen, and why that policy;
- each level reached and when, with who each target resolved to and why — named on the
  level, or on call by a rotation turn, a scheduled shift or an override (and when that
  ends), directly or through a team. The reason is worked out by the policy simulator
  (`simulate._explain`) at the instant the level was reached, so it names the override that
  won then; it reads today's schedule rows, so a turn edited since would be explained as it
  is now;
- each paged person's notification rules (as they are now) and each notification written
  for them: every attempt counted, the provider's answer, the delivery receipt, failover and
  bundling;
- what stopped escalation: acknowledge, resolve, snooze, exhaustion, maintenance, or
  nothing being routed — or that paging is still going.

The JSON (the API) and the sentences (the incident page) come from the same structure.
Retries that failed and were tried again are counted (`attempts`) with the last error only:
the outbox keeps one row per page, not one per attempt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pagerpal_core.models import (
    AlertSource,
    EscalationLevel,
    EscalationPolicy,
    Incident,
    IncidentEvent,
    Notification,
    User,
)
from pagerpal_core.models.maintenance import MaintenanceHold
from pagerpal_core.security import clip, mask_destination
from pagerpal_core.services.notification_rules import effective_rules
from pagerpal_core.services.simulate import _explain
from pagerpal_core.timeutil import isoformat

# Timeline kinds that are steps of the paging story (repeats, notes and the like are not).
STEP_KINDS = {
    "triggered", "maintenance", "maintenance_ended", "unrouted", "paged", "level_unreachable", "escalated",
    "escalation_repeated", "escalation_exhausted", "acknowledged", "snoozed", "snooze_ended", "ack_timeout",
    "resolved", "reopened", "reassigned", "alert_recovered", "alert_acknowledged",
}
# Timeline kinds that belong to one notification (detail.notification_id).
NOTIFICATION_KINDS = {
    "notification_sent", "notification_failed", "notification_delivered", "notification_undeliverable",
    "notification_failover", "notification_bundled", "notification_retry", "notification_suppressed",
}
CHANNEL_WORDS = {"sms": "SMS", "whatsapp": "WhatsApp", "email": "email"}
# A provider error in a sentence is cut to this length (the JSON keeps `last_error` whole).
ERROR_CLIP = 300


def _hm(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value else "—"


@dataclass
class TraceNotification:
    """One outbox row for a paged person, with what happened to it."""

    id: int
    channel: str
    destination: str          # masked
    status: str
    attempts: int
    due_at: str | None
    first_attempt_at: str | None
    sent_at: str | None
    delivered_at: str | None
    failed_over_at: str | None
    provider_status: str | None
    provider_message_id: str | None
    last_error: str | None
    events: list[dict] = field(default_factory=list)
    text: str = ""


@dataclass
class TracePerson:
    """Someone a level reached (or could not reach), why, their rules and their notifications."""

    user_id: int
    name: str
    reason: str               # "user", "override", "entry", "rotation", "unknown"
    explanation: str          # "override until 13:00 CET, schedule primary"
    reachable: bool
    rules: list[dict] = field(default_factory=list)
    notifications: list[TraceNotification] = field(default_factory=list)
    text: str = ""


@dataclass
class TraceStep:
    """One step of the story, in timeline order."""

    at: str
    kind: str
    text: str
    actor: str
    level: int | None = None
    people: list[TracePerson] = field(default_factory=list)


@dataclass
class Trace:
    """The whole answer to "why was / wasn't this paged?"."""

    incident_id: int
    status: str
    paging_state: str
    summary: str
    source: dict | None
    policy: dict | None
    maintenance: dict | None
    stopped: dict
    steps: list[TraceStep]

    def as_dict(self) -> dict:
        """The JSON the API serves."""
        return asdict(self)


def _notification(row: Notification, events: list[IncidentEvent]) -> TraceNotification:
    channel = CHANNEL_WORDS.get(row.channel, row.channel)
    item = TraceNotification(
        id=row.id, channel=row.channel, destination=mask_destination(row.destination), status=row.status,
        attempts=row.attempts or 0, due_at=isoformat(row.next_attempt_at) if row.status == "pending" else None,
        first_attempt_at=isoformat(row.first_attempt_at), sent_at=isoformat(row.sent_at),
        delivered_at=isoformat(row.delivered_at), failed_over_at=isoformat(row.failed_over_at),
        provider_status=row.provider_status, provider_message_id=row.provider_message_id,
        last_error=row.last_error,
        events=[{"at": isoformat(e.created_at), "kind": e.kind, "text": e.message} for e in events])
    attempts = f"{item.attempts} attempt{'s' if item.attempts != 1 else ''}"
    parts = [f"{channel} to {item.destination}: {row.status}"]
    if row.status == "pending":
        parts.append(f"due {_hm(row.next_attempt_at)}" + (f" after {attempts}" if item.attempts else ""))
    elif item.attempts:
        parts.append(attempts)
    if row.sent_at:
        answer = f"provider accepted it at {_hm(row.sent_at)}"
        if row.provider_message_id:
            answer += f" (message id {row.provider_message_id})"
        parts.append(answer)
    if row.delivered_at:
        parts.append(f"receipt: delivered at {_hm(row.delivered_at)}")
    elif row.status == "undeliverable":
        why = row.provider_status or clip(row.last_error, ERROR_CLIP) or "no reason given"
        parts.append(f"receipt: undeliverable ({why})")
    if row.last_error and row.status != "undeliverable":
        parts.append(f"last error: {clip(row.last_error, ERROR_CLIP)}")
    if row.failed_over_at:
        parts.append(f"failed over to the next contact method at {_hm(row.failed_over_at)}")
    if row.status == "bundled":
        parts.append("folded into a summary message")
    item.text = "; ".join(parts)
    return item


def _rules(session: Session, user: User) -> list[dict]:
    out = []
    for rule in effective_rules(session, user):
        method = rule.contact_method
        out.append({"contact_method_id": method.id, "channel": method.channel,
                    "destination": mask_destination(method.destination), "delay_minutes": rule.delay_minutes,
                    "default": rule.default})
    return out


def _rules_text(rules: list[dict]) -> str:
    if not rules:
        return "no enabled contact method"
    words = [f"{CHANNEL_WORDS.get(r['channel'], r['channel'])} "
             + ("at once" if not r["delay_minutes"] else f"after {r['delay_minutes']} min") for r in rules]
    return ("every contact method at once (no rules of their own): " if rules[0]["default"] else "rules: ") \
        + ", ".join(words)


class _Context:
    """What building one trace reads once: levels, users, notifications and their events."""

    def __init__(self, session: Session, incident: Incident, events: list[IncidentEvent]):
        self.session = session
        self.incident = incident
        self.levels: dict[int, EscalationLevel] = {}
        if incident.policy_id is not None:
            for level in session.scalars(select(EscalationLevel).where(EscalationLevel.policy_id == incident.policy_id)
                                         .options(selectinload(EscalationLevel.targets))):
                self.levels[level.level_number] = level
        self.notifications = list(session.scalars(select(Notification).where(Notification.incident_id == incident.id)
                                                  .order_by(Notification.id)))
        self.by_id = {n.id: n for n in self.notifications}
        self.events_by_notification: dict[int, list[IncidentEvent]] = {}
        for event in events:
            nid = (event.detail or {}).get("notification_id")
            if event.kind in NOTIFICATION_KINDS and isinstance(nid, int):
                self.events_by_notification.setdefault(nid, []).append(event)
        self.used: set[int] = set()

    def person(self, entry: dict, level_number: int | None, at: datetime, detail: dict,
               reachable: bool) -> TracePerson:
        session = self.session
        user = session.get(User, entry.get("user_id")) if isinstance(entry.get("user_id"), int) else None
        name = entry.get("name") or (user.name if user else "?")
        level = self.levels.get(level_number) if level_number is not None else None
        reason, explanation = "unknown", entry.get("via") or "?"
        if user is not None and level is not None:
            reach = _explain(session, level, user, at)
            if reach.reason != "unknown":
                reason, explanation = reach.reason, reach.explain(at)
        rules = _rules(session, user) if user is not None else []
        person = TracePerson(user_id=entry.get("user_id"), name=name, reason=reason, explanation=explanation,
                             reachable=reachable, rules=rules)
        if reachable:
            ids = [i for i in entry.get("notification_ids") or [] if isinstance(i, int)]
            key = (f"inc{self.incident.id}:g{detail.get('page_generation')}:r{detail.get('round')}"
                   f":l{level_number}:u{entry.get('user_id')}")
            rows = [n for n in self.notifications if n.id in ids or (n.round_key == key and n.user_id is not None)]
            for row in rows:
                if row.id in self.used:
                    continue
                self.used.add(row.id)
                person.notifications.append(_notification(row, self.events_by_notification.get(row.id, [])))
        person.text = (f"{name} — {explanation}; {_rules_text(rules)}" if reachable
                       else f"{name} — {explanation}; had no enabled contact method")
        return person


def _source_and_policy(session: Session, incident: Incident) -> tuple[dict | None, dict | None]:
    source = session.get(AlertSource, incident.alert_source_id) if incident.alert_source_id else None
    source_out = {"id": source.id, "name": source.name, "kind": source.kind} if source else None
    policy = session.get(EscalationPolicy, incident.policy_id) if incident.policy_id else None
    if policy is None:
        return source_out, None
    details = incident.details or {}
    if source is not None and source.policy_id == policy.id:
        why = f"the policy of alert source {source.name}"
    elif details.get("heartbeat_id") is not None:
        why = f"the policy of heartbeat monitor {details.get('heartbeat')!r}"
    else:
        why = "the policy set on the incident"
    return source_out, {"id": policy.id, "name": policy.name, "chosen_because": why,
                        "repeat_count": policy.repeat_count}


def _stopped(session: Session, incident: Incident, events: list[IncidentEvent], maintenance: dict | None) -> dict:
    last = {e.kind: e for e in events}

    def by(kind: str) -> str:
        event = last.get(kind)
        return f" by {event.actor_label} at {_hm(event.created_at)}" if event is not None else ""

    state = incident.paging_state
    if incident.status == "resolved":
        return {"kind": "resolved", "text": f"Escalation stopped: resolved{by('resolved')}."}
    if state == "snoozed":
        return {"kind": "snoozed", "text": f"Escalation stopped: snoozed{by('snoozed')} until "
                f"{_hm(incident.snoozed_until)}; level 1 is paged again then unless resolved."}
    if incident.status == "acknowledged":
        return {"kind": "acknowledged", "text": f"Escalation stopped: acknowledged{by('acknowledged')}."}
    if maintenance is not None and maintenance.get("holding"):
        return {"kind": "maintenance", "text": f"Nobody is paged: in maintenance ({maintenance['reason']}, until "
                f"{_hm(maintenance['until_dt'])}); paging starts then if the incident is still open."}
    if state == "unrouted":
        event = last.get("unrouted")
        why = (event.detail or {}).get("reason") if event is not None else None
        return {"kind": "unrouted", "text": f"Nobody was paged: {why or 'no level reaches anyone'}."}
    if state == "exhausted":
        return {"kind": "exhausted", "text": "Escalation exhausted: every level was paged and nobody acknowledged."}
    nxt = (f"; escalation goes on at {_hm(incident.next_escalation_at)} unless acknowledged"
           if incident.next_escalation_at else "")
    return {"kind": "paging", "text": f"Still paging: level {incident.current_level} was paged last{nxt}."}


def _maintenance(session: Session, incident: Incident, events: list[IncidentEvent]) -> dict | None:
    hold = session.get(MaintenanceHold, incident.id)
    window = hold.window if hold is not None else None
    if window is not None:
        return {"holding": True, "window_id": window.id, "reason": window.reason,
                "until": isoformat(window.effective_end), "until_dt": window.effective_end}
    held = [e for e in events if e.kind == "maintenance"]
    if hold is not None:  # its window was deleted: released at the worker's next cycle
        return {"holding": True, "window_id": None, "reason": "deleted window", "until": None, "until_dt": None}
    if held:
        detail = held[-1].detail or {}
        return {"holding": False, "window_id": detail.get("window_id"), "reason": detail.get("reason"),
                "until": detail.get("until"), "until_dt": None}
    return None


def _summary(steps: list[TraceStep], stopped: dict) -> str:
    paged = [p for s in steps if s.kind == "paged" for p in s.people if p.reachable]
    if not paged:
        return stopped["text"]
    names = []
    for person in paged:
        if person.name not in names:
            names.append(person.name)
    return f"Paged {', '.join(names)}. {stopped['text']}"


def trace_incident(session: Session, incident: Incident) -> Trace:
    """The paging story of `incident`, step by step (see the module docstring)."""
    events = list(session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)
                                  .order_by(IncidentEvent.id)))
    ctx = _Context(session, incident, events)
    source, policy = _source_and_policy(session, incident)
    maintenance = _maintenance(session, incident, events)
    steps: list[TraceStep] = []
    for event in events:
        if event.kind not in STEP_KINDS:
            continue
        detail = event.detail or {}
        step = TraceStep(at=isoformat(event.created_at), kind=event.kind, text=event.message,
                         actor=event.actor_label, level=detail.get("level") if event.kind in
                         ("paged", "level_unreachable") else None)
        if event.kind == "triggered":
            origin = f"alert source {source['name']}" if source else event.actor_label
            step.text = f"Opened at {_hm(event.created_at)} by {origin}: {incident.title}"
            if policy is not None:
                step.text += f". Policy {policy['name']} was chosen: {policy['chosen_because']}."
            elif incident.policy_id is None:
                step.text += ". No escalation policy applies (neither the incident nor its source names one)."
        if event.kind in ("paged", "level_unreachable"):
            level = step.level
            step.text = (f"Level {level} reached at {_hm(event.created_at)}" +
                         ("" if event.kind == "paged" else "; it reached no one, so the next level was tried"))
            for entry in detail.get("paged") or []:
                step.people.append(ctx.person(entry, level, event.created_at, detail, True))
            for entry in detail.get("no_contact_method") or []:
                step.people.append(ctx.person(entry, level, event.created_at, detail, False))
        steps.append(step)
    # Pages not tied to a level (a reassign, a failover into a new row) are still shown.
    leftovers = [n for n in ctx.notifications if n.id not in ctx.used]
    if leftovers:
        step = TraceStep(at=isoformat(leftovers[0].created_at), kind="other_notifications",
                         text="Other notifications for this incident (reassignment, failover, summaries)",
                         actor="system")
        by_user: dict = {}
        for row in leftovers:
            by_user.setdefault(row.user_id, []).append(row)
        for user_id, rows in by_user.items():
            user = session.get(User, user_id) if user_id else None
            person = TracePerson(user_id=user_id, name=user.name if user else "(no user)", reason="unknown",
                                 explanation="", reachable=True,
                                 notifications=[_notification(r, ctx.events_by_notification.get(r.id, []))
                                                for r in rows])
            person.text = person.name
            step.people.append(person)
        steps.append(step)
    stopped = _stopped(session, incident, events, maintenance)
    if maintenance is not None:
        maintenance = {k: v for k, v in maintenance.items() if k != "until_dt"}
    holding = maintenance is not None and maintenance["holding"] and incident.status == "triggered"
    return Trace(incident_id=incident.id, status=incident.status,
                 paging_state="maintenance" if holding else incident.paging_state,
                 summary=_summary(steps, stopped), source=source, policy=policy, maintenance=maintenance,
                 stopped=stopped, steps=steps)
