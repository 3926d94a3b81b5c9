"""Incident lifecycle at the service level, end to end through the escalation step."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from pagerpal_core.errors import Conflict, Invalid
from pagerpal_core.models import Incident, Notification
from pagerpal_core.services.escalation import run_escalation_step
from pagerpal_core.services.escalation_policies import add_level, create_policy
from pagerpal_core.services.incidents import (
    acknowledge_incident,
    add_note,
    escalate_incident,
    reassign_incident,
    reopen_incident,
    resolve_incident,
)
from pagerpal_core.services.users import deactivate_user
from tests.core.routing_setup import BASE_URL, T0, event_kinds, make_source, make_world, open_incident, pages
from tests.factories import make_user


def minutes(n: int):
    return T0 + timedelta(minutes=n)


def step(session, at) -> int:
    count = run_escalation_step(session, now=at, base_url=BASE_URL)
    session.commit()
    return count


def test_alert_to_pages_escalation_ack_and_reopen(session):
    world = make_world(session)
    incident = open_incident(session, world.source)
    session.commit()

    # Level 1: whoever is on call in "primary" (Ada), one row per enabled contact method.
    assert pages(session, incident) == [(1, "Ada", "sms", "pending"), (1, "Ada", "email", "pending")]
    assert (incident.policy_id, incident.current_level, incident.assignee_id) == (world.policy.id, 1, world.ada.id)
    assert incident.next_escalation_at == minutes(10)
    sms = session.scalar(select(Notification).where(Notification.channel == "sms"))
    # The SMS carries the page's signed action link and reply code instead of the incident URL.
    assert sms.destination == "+14155550101" and f"{BASE_URL}/a/" in sms.body and " ACK / " in sms.body
    assert sms.subject == "[CRITICAL] Disk full on db-1" and sms.next_attempt_at == T0

    # Not yet due: nothing happens.
    assert step(session, minutes(9)) == 0
    assert len(pages(session, incident)) == 2

    # Past the delay: level 2 (Ben's email; his WhatsApp is switched off).
    assert step(session, minutes(10)) == 1
    assert pages(session, incident)[2:] == [(2, "Ben", "email", "pending")]
    assert (incident.current_level, incident.next_escalation_at) == (2, minutes(20))
    assert step(session, minutes(10)) == 0

    # Acknowledge: escalation stops, unsent pages are cancelled, time moving on adds nothing.
    acknowledge_incident(session, incident, actor=world.ben, now=minutes(12))
    session.commit()
    assert {status for *_, status in pages(session, incident)} == {"cancelled"}
    assert (incident.status, incident.next_escalation_at, incident.acknowledged_by_id) == (
        "acknowledged", None, world.ben.id)
    for later in (20, 60, 600):
        assert step(session, minutes(later)) == 0
    assert len(pages(session, incident)) == 3

    # Resolve, then reopen: level 1 is paged again with fresh rows.
    resolve_incident(session, incident, actor=world.ben, now=minutes(30), note="disk cleaned")
    reopen_incident(session, incident, actor=world.ben, now=minutes(40), base_url=BASE_URL)
    session.commit()
    assert pages(session, incident)[3:] == [(1, "Ada", "sms", "pending"), (1, "Ada", "email", "pending")]
    assert (incident.status, incident.current_level, incident.page_generation) == ("triggered", 1, 2)
    assert incident.resolved_at is None and incident.next_escalation_at == minutes(50)

    # And it escalates again, then runs out of levels.
    assert step(session, minutes(50)) == 1
    assert pages(session, incident)[5:] == [(2, "Ben", "email", "pending")]
    assert step(session, minutes(60)) == 1
    assert incident.next_escalation_at is None
    assert step(session, minutes(70)) == 0
    assert len(pages(session, incident)) == 6
    assert event_kinds(session, incident) == [
        "triggered", "paged", "escalated", "paged", "acknowledged", "resolved", "reopened", "paged",
        "escalated", "paged", "escalation_exhausted"]


def test_transitions_are_validated(session):
    world = make_world(session)
    incident = open_incident(session, world.source)
    with pytest.raises(Conflict):
        reopen_incident(session, incident, actor=world.ada, now=minutes(1), base_url=BASE_URL)
    acknowledge_incident(session, incident, actor=world.ada, now=minutes(1))
    with pytest.raises(Conflict):
        acknowledge_incident(session, incident, actor=world.ada, now=minutes(2))
    resolve_incident(session, incident, actor="system", now=minutes(3))
    for action in (lambda: acknowledge_incident(session, incident, actor=world.ada, now=minutes(4)),
                   lambda: resolve_incident(session, incident, actor=world.ada, now=minutes(4)),
                   lambda: escalate_incident(session, incident, actor=world.ada, now=minutes(4), base_url=BASE_URL),
                   lambda: reassign_incident(session, incident, world.ben, actor=world.ada, now=minutes(4),
                                             base_url=BASE_URL)):
        with pytest.raises(Conflict):
            action()
    with pytest.raises(Invalid) as info:
        add_note(session, incident, "   ", actor=world.ada, now=minutes(5))
    assert info.value.fields == {"text": "is required"}
    add_note(session, incident, "post-mortem on Monday", actor=world.ada, now=minutes(5))
    assert event_kinds(session, incident)[-1] == "note"


def test_manual_escalate_and_reassign(session):
    world = make_world(session)
    incident = open_incident(session, world.source)
    acknowledge_incident(session, incident, actor=world.ada, now=minutes(1))
    # Escalating an acknowledged incident sends it back to triggered and pages the next level now.
    escalate_incident(session, incident, actor=world.ada, now=minutes(2), base_url=BASE_URL)
    assert (incident.status, incident.current_level, incident.next_escalation_at) == ("triggered", 2, minutes(12))
    assert pages(session, incident)[-1] == (2, "Ben", "email", "pending")
    # Past the last level a manual escalation starts again at level 1.
    escalate_incident(session, incident, actor=world.ada, now=minutes(3), base_url=BASE_URL)
    assert incident.current_level == 1 and pages(session, incident)[-2:] == [
        (1, "Ada", "sms", "pending"), (1, "Ada", "email", "pending")]

    reassign_incident(session, incident, world.cy.id, actor=world.ada, now=minutes(4), base_url=BASE_URL)
    assert incident.assignee_id == world.cy.id
    with pytest.raises(Conflict):
        reassign_incident(session, incident, world.cy, actor=world.ada, now=minutes(5), base_url=BASE_URL)
    deactivate_user(session, world.ben, now=minutes(6))
    with pytest.raises(Invalid) as info:
        reassign_incident(session, incident, world.ben, actor=world.ada, now=minutes(7), base_url=BASE_URL)
    assert "inactive" in info.value.fields["user_id"]
    # Cy is the assignee; deactivating Cy warns on the incident's timeline.
    deactivate_user(session, world.cy, now=minutes(8))
    assert event_kinds(session, incident)[-1] == "assignee_deactivated"


def test_empty_level_moves_on_at_once_and_nobody_means_unrouted(session):
    world = make_world(session)
    # Cy is on level 1 but has no contact method: a warning, and level 2 is paged at once.
    policy = create_policy(session, name="cy-first", levels=[
        {"delay_minutes": 5, "targets": [{"type": "user", "id": world.cy.id}]},
        {"delay_minutes": 5, "targets": [{"type": "user", "id": world.ben.id}]}])
    incident = open_incident(session, world.source, policy=policy)
    assert pages(session, incident) == [(2, "Ben", "email", "pending")]
    assert event_kinds(session, incident) == ["triggered", "level_unreachable", "paged"]
    assert (incident.current_level, incident.unrouted, incident.next_escalation_at) == (2, False, minutes(5))

    # Nobody reachable anywhere: flagged unrouted, on the timeline, not escalating.
    deactivate_user(session, world.ben, now=T0)
    incident2 = open_incident(session, world.source, policy=policy, external_id="disk-2")
    assert pages(session, incident2) == []
    assert incident2.unrouted and incident2.next_escalation_at is None
    assert event_kinds(session, incident2) == ["triggered", "level_unreachable", "level_unreachable",
                                               "escalation_exhausted", "unrouted"]


def test_no_policy_is_unrouted(session):
    make_world(session)
    source = make_source(session, None, name="no-policy")
    incident = open_incident(session, source)
    assert incident.unrouted and incident.policy_id is None
    assert event_kinds(session, incident) == ["triggered", "unrouted"]
    empty = create_policy(session, name="empty")
    incident2 = open_incident(session, source, policy=empty, external_id="x")
    assert incident2.unrouted


def test_repeat_count_starts_again_from_level_one(session):
    ada = make_user(session, name="Ada", contacts=[{"channel": "email", "destination": "ada@example.test"}])
    policy = create_policy(session, name="repeat", repeat_count=2)
    add_level(session, policy, delay_minutes=5, targets=[ada])
    source = make_source(session, policy)
    incident = open_incident(session, source)
    for n in (5, 10):
        assert step(session, minutes(n)) == 1
    assert step(session, minutes(15)) == 1
    assert step(session, minutes(20)) == 0
    assert [p[0] for p in pages(session, incident)] == [1, 1, 1]
    assert event_kinds(session, incident) == ["triggered", "paged", "escalation_repeated", "paged",
                                              "escalation_repeated", "paged", "escalation_exhausted"]


def test_reopen_refused_while_a_newer_incident_is_open(session):
    world = make_world(session)
    first = open_incident(session, world.source)
    resolve_incident(session, first, actor="system", now=minutes(1))
    open_incident(session, world.source, now=minutes(2))
    with pytest.raises(Conflict) as info:
        reopen_incident(session, first, actor=world.ada, now=minutes(3), base_url=BASE_URL)
    assert "newer open incident" in info.value.message
    session.expire_all()
    assert session.get(Incident, first.id).status == "resolved"
