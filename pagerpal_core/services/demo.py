"""Demo data: a small, realistic team so a newcomer sees a populated PagerPal in one command.

Everything is created through the same services the UI and API use (so it obeys the same
rules and writes the same timeline events); nothing here writes rows directly. People are
responder identities without logins and with documentation-only phone numbers and
`example.test` addresses, so nothing real is ever paged.

Re-running with `force` reuses what a previous run created (looked up by name or email)
and adds another handful of incidents.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pagerpal_core.errors import Conflict
from pagerpal_core.models import AlertSource, EscalationPolicy, Incident, Schedule, Team, User
from pagerpal_core.payloads.common import TRIGGER, AlertEvent
from pagerpal_core.services import escalation_policies, schedules, teams
from pagerpal_core.services.alert_sources import create_alert_source
from pagerpal_core.services.incidents import acknowledge_incident, resolve_incident
from pagerpal_core.services.ingestion import ingest_event
from pagerpal_core.services.users import create_user, find_user_by_email

# (name, email, role, time zone, phone) — 555-01xx numbers are reserved for fiction.
PEOPLE = [
    ("Alice Andersen", "alice@demo.example.test", "responder", "Europe/Berlin", "+14155550101"),
    ("Bob Brennan", "bob@demo.example.test", "responder", "Europe/London", "+14155550102"),
    ("Carol Chen", "carol@demo.example.test", "responder", "America/New_York", "+14155550103"),
    ("Dan Diaz", "dan@demo.example.test", "responder", "America/New_York", "+14155550104"),
    ("Erin Eze", "erin@demo.example.test", "responder", "Europe/Berlin", "+14155550105"),
    ("Frank Fischer", "frank@demo.example.test", "viewer", "UTC", None),
]
TEAMS = {"Platform": ["Alice Andersen", "Bob Brennan", "Carol Chen", "Erin Eze"],
         "Payments": ["Carol Chen", "Dan Diaz", "Erin Eze"]}
SOURCE_KINDS = [("demo-generic", "generic"), ("demo-grafana", "grafana"), ("demo-cloudwatch", "cloudwatch"),
                ("demo-alertmanager", "alertmanager"), ("demo-pagerduty", "pagerduty")]
# (minutes ago, source, title, severity, what happens next)
INCIDENTS = [
    (19, "demo-grafana", "API p99 latency above 800 ms", "high", "resolve"),
    (16, "demo-cloudwatch", "RDS CPU above 90% for 5 minutes", "critical", "acknowledge"),
    (12, "demo-alertmanager", "Disk 92% full on db-2", "warning", "resolve"),
    (9, "demo-pagerduty", "Payment provider error rate 4%", "critical", "acknowledge"),
    (5, "demo-generic", "Nightly backup did not finish", "high", None),
    (2, "demo-grafana", "Checkout 5xx above 1%", "critical", None),
]


@dataclass
class DemoResult:
    """What a demo run created or reused, for the CLI to print."""

    users: int = 0
    teams: int = 0
    schedules: int = 0
    policies: int = 0
    sources: int = 0
    incidents: dict[str, int] = field(default_factory=dict)


def _one(session: Session, model, name: str):
    return session.scalar(select(model).where(model.name == name))


def _people(session: Session) -> dict[str, User]:
    people = {}
    for name, email, role, zone, phone in PEOPLE:
        user = find_user_by_email(session, email)
        if user is None:
            contacts = [{"channel": "email", "destination": email}]
            if phone:
                contacts.insert(0, {"channel": "sms", "destination": phone})
            user = create_user(session, email=email, name=name, role=role, timezone=zone, contact_methods=contacts)
        people[name] = user
    return people


def _teams(session: Session, people: dict[str, User], now: datetime) -> dict[str, Team]:
    out = {}
    for name, members in TEAMS.items():
        team = _one(session, Team, name)
        if team is None:
            team = teams.create_team(session, name=name, description=f"{name} engineering (demo)", now=now)
            for member in members:
                teams.add_team_member(session, team, people[member], now=now)
        out[name] = team
    return out


def _schedules(session: Session, people: dict[str, User], team_of: dict[str, Team],
               now: datetime) -> dict[str, Schedule]:
    out = {}
    started = (now - timedelta(days=10)).date()
    plans = [
        # name, zone, team, shift, unit, handoff, participants (turn order as chosen, not alphabetical)
        ("Platform primary", "Europe/Berlin", "Platform", 1, "weeks", "09:00",
         ["Carol Chen", "Alice Andersen", "Bob Brennan"]),
        ("Platform secondary", "Europe/London", "Platform", 1, "days", "10:00", ["Erin Eze", "Bob Brennan"]),
        ("Payments", "America/New_York", "Payments", 12, "hours", "08:00", ["Dan Diaz", "Carol Chen"]),
    ]
    for name, zone, team, length, unit, handoff, order in plans:
        schedule = _one(session, Schedule, name)
        if schedule is None:
            schedule = schedules.create_schedule(session, name=name, timezone=zone, team=team_of[team],
                                                 description="demo schedule", now=now)
            schedules.create_rotation(session, schedule, start_date=started, name=f"{name} rotation",
                                      shift_length=length, shift_unit=unit, handoff_time=handoff,
                                      participants=[people[p] for p in order], now=now)
            if name == "Platform primary":
                # Someone covers the next few hours: the override layer in action.
                schedules.create_override(session, schedule, user=people["Erin Eze"],
                                          starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=3),
                                          reason="Swap: dentist appointment", now=now)
        out[name] = schedule
    return out


def _policies(session: Session, people: dict[str, User], team_of: dict[str, Team],
              schedule_of: dict[str, Schedule], now: datetime) -> dict[str, EscalationPolicy]:
    out = {}
    plans = [
        ("Platform default", "Platform", [
            {"delay_minutes": 5, "targets": [{"type": "schedule", "id": schedule_of["Platform primary"].id}]},
            {"delay_minutes": 10, "targets": [{"type": "schedule", "id": schedule_of["Platform secondary"].id},
                                              {"type": "user", "id": people["Alice Andersen"].id}]}]),
        ("Payments default", "Payments", [
            {"delay_minutes": 5, "targets": [{"type": "schedule", "id": schedule_of["Payments"].id}]},
            {"delay_minutes": 15, "targets": [{"type": "team", "id": team_of["Payments"].id}]}]),
    ]
    for name, team, levels in plans:
        policy = _one(session, EscalationPolicy, name)
        if policy is None:
            policy = escalation_policies.create_policy(session, name=name, team=team_of[team], levels=levels,
                                                       description="demo policy", now=now)
        out[name] = policy
    return out


def _sources(session: Session, policy_of: dict[str, EscalationPolicy], now: datetime) -> dict[str, AlertSource]:
    out = {}
    for name, kind in SOURCE_KINDS:
        source = _one(session, AlertSource, name)
        if source is None:
            policy = policy_of["Payments default" if kind == "pagerduty" else "Platform default"]
            # The key is discarded: a demo source is regenerated in the UI when someone wants to send to it.
            source = create_alert_source(session, name=name, kind=kind, policy_id=policy.id, now=now).source
        out[name] = source
    return out


def create_demo_data(session: Session, *, now: datetime, base_url: str, force: bool = False) -> DemoResult:
    """Create the demo team, schedules, policies, sources and a handful of incidents. Flushes.

    Refuses (Conflict) a database that already has incidents unless `force`: demo incidents
    must never be mixed into a real installation by accident.
    """
    existing = session.scalar(select(func.count(Incident.id))) or 0
    if existing and not force:
        raise Conflict(f"this database already has {existing} incidents; demo data is for a fresh "
                       "database (use --force to add it anyway)", detail={"incidents": existing})
    people = _people(session)
    team_of = _teams(session, people, now)
    schedule_of = _schedules(session, people, team_of, now)
    policy_of = _policies(session, people, team_of, schedule_of, now)
    source_of = _sources(session, policy_of, now)
    # A fresh tag per run: a forced second run opens new incidents instead of counting repeats.
    run = secrets.token_hex(4)
    result = DemoResult(users=len(people), teams=len(team_of), schedules=len(schedule_of),
                        policies=len(policy_of), sources=len(source_of))
    for minutes_ago, source_name, title, severity, then in INCIDENTS:
        opened = now - timedelta(minutes=minutes_ago)
        event = AlertEvent(action=TRIGGER, external_id=f"demo-{run}-{minutes_ago}", title=title,
                           severity=severity, description="Demo incident created by `flask pagerpal demo-data`.")
        outcome = ingest_event(session, source_of[source_name], event, now=opened, base_url=base_url)
        incident = session.get(Incident, outcome.incident_id)
        responder = people["Carol Chen"] if source_name != "demo-pagerduty" else people["Dan Diaz"]
        if then in ("acknowledge", "resolve"):
            acknowledge_incident(session, incident, actor=responder, now=opened + timedelta(minutes=2))
        if then == "resolve":
            resolve_incident(session, incident, actor=responder, now=opened + timedelta(minutes=4),
                             note="Demo: fixed and verified.")
        result.incidents[incident.status] = result.incidents.get(incident.status, 0) + 1
    session.flush()
    return result
