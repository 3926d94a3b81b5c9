"""Reassign, snooze and ack timeout through the real worker cycle, with an injected clock.

The test's session and the worker share one database; the test commits (or rolls back)
before every cycle so a SQLite write lock never blocks the worker.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from pagerpal_core.errors import Conflict, Invalid
from pagerpal_core.models import Incident, IncidentEvent, Notification, User
from pagerpal_core.services.escalation_policies import update_policy
from pagerpal_core.services.incidents import acknowledge_incident, reassign_incident, resolve_incident, snooze_incident
from pagerpal_worker.loop import run_cycle
from tests.core.routing_setup import BASE_URL, T0, make_world, open_incident
from tests.factories import make_user
from tests.worker.conftest import read

DEE_NUMBER = "+14155550199"


def at(minutes: float):
    return T0 + timedelta(minutes=minutes)


def fresh(session, incident_id: int) -> Incident:
    return read(session, lambda: session.get(Incident, incident_id))


def pages_of(session, incident_id: int) -> list[tuple]:
    """(level, user name, channel, status) of every page of the incident, oldest first."""
    return read(session, lambda: [tuple(r) for r in session.execute(
        select(Notification.escalation_level, User.name, Notification.channel, Notification.status)
        .join(User, User.id == Notification.user_id)
        .where(Notification.incident_id == incident_id).order_by(Notification.id))])


def kinds(session, incident_id: int) -> list[str]:
    return read(session, lambda: list(session.scalars(select(IncidentEvent.kind).where(
        IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.id))))


def followed_by(kinds: list[str], first: str, then: str) -> bool:
    """`first` happened once and the next paging event after it is `then`."""
    assert kinds.count(first) == 1, kinds
    return then in kinds[kinds.index(first) + 1:]


def sms_destinations(fake) -> list[str]:
    """E.164 numbers the fake Infobip was asked to text (Infobip takes them without the "+")."""
    return ["+" + to.lstrip("+") for req in list(fake.requests) for to in req.destinations()]


@pytest.fixture
def world(session):
    world = make_world(session)
    session.commit()
    return world


@pytest.fixture
def ctx(make_ctx, fake_infobip):
    return make_ctx(fake_infobip.url)


def test_reassign_pages_the_new_assignee_in_one_cycle_and_keeps_the_incident_theirs(session, world, ctx,
                                                                                     fake_infobip):
    dee = make_user(session, name="Dee", contacts=[{"channel": "sms", "destination": DEE_NUMBER}])
    incident = open_incident(session, world.source)
    session.commit()
    incident_id = incident.id
    assert incident.assignee_id == world.ada.id  # level 1 (Ada on call) holds it

    reassign_incident(session, incident, dee, actor=world.ada, now=at(2), base_url=BASE_URL)
    session.commit()
    # Same transaction as the reassign: Dee's page is already an outbox row, and the timeline says so.
    assert pages_of(session, incident_id)[-1] == (0, "Dee", "sms", "pending")
    event = read(session, lambda: session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "reassigned")).one())
    assert event.message == "Reassigned to Dee; paged Dee (sms)"

    # One worker cycle later Dee's phone has the page.
    report = run_cycle(ctx, at(2))
    assert report.errors == {}
    assert DEE_NUMBER in sms_destinations(fake_infobip)
    assert pages_of(session, incident_id)[-1] == (0, "Dee", "sms", "sent")

    # Dee gets a full level delay: level 2 is not paged at the old time (minute 10) ...
    run_cycle(ctx, at(10))
    assert [p for p in pages_of(session, incident_id) if p[0] == 2] == []
    # ... but at minute 12 it is, and the incident stays Dee's (no silent reassign to Ben).
    run_cycle(ctx, at(12))
    assert (2, "Ben", "email") in [p[:3] for p in pages_of(session, incident_id)]
    incident = fresh(session, incident_id)
    assert (incident.current_level, incident.assignee_id, incident.assignment_pinned) == (2, dee.id, True)


def test_without_a_reassign_escalation_still_hands_the_incident_to_the_paged_level(session, world, ctx):
    incident = open_incident(session, world.source)
    session.commit()
    run_cycle(ctx, at(10))
    assert fresh(session, incident.id).assignee_id == world.ben.id


def test_snooze_ends_and_pages_level_one_again(session, world, ctx, fake_infobip):
    incident = open_incident(session, world.source)
    session.commit()
    incident_id = incident.id
    snooze_incident(session, incident, minutes=30, actor=world.ada, now=at(1), via="SMS reply")
    session.commit()
    incident = fresh(session, incident_id)
    assert (incident.status, incident.snoozed_until, incident.snoozed_by_id) == ("acknowledged", at(31), world.ada.id)
    # The unsent level-1 pages were cancelled by the snooze.
    assert {p[3] for p in pages_of(session, incident_id)} == {"cancelled"}
    assert "via SMS reply" in read(session, lambda: session.scalars(select(IncidentEvent.message).where(
        IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "snoozed")).one())

    # Past the level delay but inside the snooze: nothing is paged.
    run_cycle(ctx, at(20))
    assert fresh(session, incident_id).status == "acknowledged"
    assert len(pages_of(session, incident_id)) == 2 and fake_infobip.requests == []

    # The snooze ends: triggered again, level 1 (Ada) paged afresh, and the SMS goes out in that cycle.
    report = run_cycle(ctx, at(31))
    assert report.errors == {}
    incident = fresh(session, incident_id)
    assert (incident.status, incident.current_level, incident.snoozed_until, incident.retrigger_at) == (
        "triggered", 1, None, None)
    assert incident.next_escalation_at == at(41)
    assert [p[:3] for p in pages_of(session, incident_id)[2:]] == [(1, "Ada", "sms"), (1, "Ada", "email")]
    assert "+14155550101" in sms_destinations(fake_infobip)
    assert followed_by(kinds(session, incident_id), "snooze_ended", "paged")
    # It escalates normally from there.
    run_cycle(ctx, at(41))
    assert fresh(session, incident_id).current_level == 2


def test_ack_timeout_retriggers_an_acknowledged_incident(session, world, ctx):
    update_policy(session, world.policy, ack_timeout_minutes=15)
    incident = open_incident(session, world.source)
    acknowledge_incident(session, incident, actor=world.ada, now=at(1))
    session.commit()
    incident_id = incident.id
    assert fresh(session, incident_id).retrigger_at == at(16)

    run_cycle(ctx, at(15))
    assert fresh(session, incident_id).status == "acknowledged"
    run_cycle(ctx, at(16))
    incident = fresh(session, incident_id)
    assert (incident.status, incident.current_level, incident.acknowledged_at) == ("triggered", 1, None)
    assert followed_by(kinds(session, incident_id), "ack_timeout", "paged")
    assert [p[:3] for p in pages_of(session, incident_id)[2:]] == [(1, "Ada", "sms"), (1, "Ada", "email")]


def test_resolving_or_reacknowledging_ends_the_wait(session, world, ctx):
    update_policy(session, world.policy, ack_timeout_minutes=15)
    snoozed = open_incident(session, world.source, external_id="a")
    timed = open_incident(session, world.source, external_id="b")
    snooze_incident(session, snoozed, minutes=10, actor=world.ada, now=at(1))
    acknowledge_incident(session, timed, actor=world.ada, now=at(1))
    resolve_incident(session, snoozed, actor=world.ada, now=at(2))
    resolve_incident(session, timed, actor=world.ada, now=at(2))
    session.commit()
    run_cycle(ctx, at(60))
    for incident_id in (snoozed.id, timed.id):
        incident = fresh(session, incident_id)
        assert (incident.status, incident.retrigger_at, incident.snoozed_until) == ("resolved", None, None)
        assert "snooze_ended" not in kinds(session, incident_id) and "ack_timeout" not in kinds(session, incident_id)


def test_snooze_refuses_bad_minutes_and_resolved_incidents(session, world):
    incident = open_incident(session, world.source)
    for bad in (0, 1441, -5, "30", 30.0, True, None):
        with pytest.raises(Invalid) as info:
            snooze_incident(session, incident, minutes=bad, actor=world.ada, now=at(1))
        assert "minutes" in info.value.fields
    assert incident.status == "triggered"
    # Snoozing a snoozed incident moves the end; a resolved one cannot be snoozed.
    snooze_incident(session, incident, minutes=1, actor=world.ada, now=at(1))
    snooze_incident(session, incident, minutes=1440, actor=world.ben, now=at(2))
    assert (incident.snoozed_until, incident.snoozed_by_id) == (at(2 + 1440), world.ben.id)
    resolve_incident(session, incident, actor=world.ada, now=at(3))
    with pytest.raises(Conflict):
        snooze_incident(session, incident, minutes=30, actor=world.ada, now=at(4))
