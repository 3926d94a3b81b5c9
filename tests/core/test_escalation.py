"""Escalation policies: levels and targets, target resolution, paging dedup, the step's batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from pagerpal_core.errors import Conflict, Invalid
from pagerpal_core.models import EscalationLevel, Notification
from pagerpal_core.services.escalation import run_escalation_step
from pagerpal_core.services.escalation_policies import (
    add_level,
    add_target,
    create_policy,
    delete_level,
    delete_policy,
    remove_target,
    update_level,
    update_policy,
)
from pagerpal_core.services.paging import page_user
from pagerpal_core.services.schedules import create_entry, create_schedule, delete_schedule
from pagerpal_core.services.targets import resolve_targets
from pagerpal_core.services.teams import add_team_member, create_team, delete_team
from pagerpal_core.services.users import deactivate_user
from tests.core.routing_setup import BASE_URL, T0, make_world, open_incident
from tests.factories import make_user


def test_levels_have_unique_numbers(session):
    ada = make_user(session, name="Ada")
    policy = create_policy(session, name="p", levels=[{"targets": [ada]}, {"targets": [ada], "delay_minutes": 0}])
    assert [(lv.level_number, lv.delay_minutes) for lv in policy.levels] == [(1, 15), (2, 0)]
    with pytest.raises(Conflict) as info:
        add_level(session, policy, level_number=2, targets=[ada])
    assert info.value.fields == {"level_number": "already used in this policy"}
    level5 = add_level(session, policy, level_number=5, delay_minutes=30, targets=[ada])
    assert add_level(session, policy, targets=[ada]).level_number == 6
    with pytest.raises(Conflict):
        update_level(session, level5, level_number=1)
    update_level(session, level5, level_number=3, delay_minutes=1)
    assert [lv.level_number for lv in policy.levels] == [1, 2, 3, 6]
    with pytest.raises(Conflict) as info:
        create_policy(session, name="q", levels=[{"level_number": 1, "targets": [ada]},
                                                 {"level_number": 1, "targets": [ada]}])
    assert "levels[1].level_number" in info.value.fields
    with pytest.raises(Conflict):
        create_policy(session, name="p")


def test_policy_and_level_validation_names_each_field(session):
    ada = make_user(session, name="Ada")
    with pytest.raises(Invalid) as info:
        create_policy(session, name=" ", repeat_count=-1, team=12345)
    assert set(info.value.fields) == {"name", "repeat_count", "team_id"}
    policy = create_policy(session, name="p")
    with pytest.raises(Invalid) as info:
        add_level(session, policy, level_number=0, delay_minutes="soon",
                  targets=[{"type": "pager", "id": 1}, {"type": "user", "id": 999}, "x", {"type": "schedule"}])
    assert set(info.value.fields) == {"level_number", "delay_minutes", "targets[0]", "targets[1]", "targets[2]",
                                      "targets[3]"}
    with pytest.raises(Invalid) as info:
        add_level(session, policy, targets=[ada, {"type": "user", "id": ada.id}])
    assert info.value.fields == {"targets": "lists the same target twice"}
    with pytest.raises(Invalid):
        update_policy(session, policy, repeat_count=True)
    update_policy(session, policy, repeat_count=3, description="nights")
    assert policy.repeat_count == 3


def test_targets_crud_and_inactive_users(session):
    ada, ben = make_user(session, name="Ada"), make_user(session, name="Ben")
    schedule = create_schedule(session, name="primary")
    team = create_team(session, name="ops")
    policy = create_policy(session, name="p")
    level = add_level(session, policy, targets=[{"type": "user", "id": ada.id}])
    add_target(session, level, {"type": "schedule", "id": schedule.id})
    target = add_target(session, level, team)
    assert [t.target_type for t in level.targets] == ["user", "schedule", "team"]
    with pytest.raises(Conflict) as info:
        add_target(session, level, schedule)
    assert info.value.fields == {"target": "already a target of this level"}
    deactivate_user(session, ben, now=T0)
    with pytest.raises(Invalid) as info:
        add_target(session, level, {"type": "user", "id": ben.id})
    assert "inactive" in info.value.fields["target"]
    remove_target(session, level, target.id)
    assert len(level.targets) == 2
    # Existing rows keep a deactivated user for history; resolution skips them.
    deactivate_user(session, ada, now=T0)
    assert [t.user_id for t in level.targets if t.target_type == "user"] == [ada.id]
    assert resolve_targets(session, level, T0) == []
    # Deleting what a policy points at is refused; deleting the level frees it.
    with pytest.raises(Conflict):
        delete_schedule(session, schedule)
    delete_level(session, level)
    delete_schedule(session, schedule)
    delete_team(session, team)
    delete_policy(session, policy)


def test_policy_in_use_cannot_be_deleted(session):
    world = make_world(session)
    with pytest.raises(Conflict):
        delete_policy(session, world.policy)


def test_resolution_of_schedule_and_team_targets(session):
    ada, ben, cy = (make_user(session, name=n) for n in ("Ada", "Ben", "Cy"))
    team = create_team(session, name="ops")
    add_team_member(session, team, cy)
    day_schedule = create_schedule(session, name="day", team=team)
    night_schedule = create_schedule(session, name="night", team=team)
    create_entry(session, day_schedule, user=ada, starts_at=T0, ends_at=T0 + timedelta(hours=8))
    create_entry(session, night_schedule, user=ben, starts_at=T0, ends_at=T0 + timedelta(hours=4))
    policy = create_policy(session, name="p")
    level = add_level(session, policy, targets=[team, ada, {"type": "schedule", "id": night_schedule.id}])
    got = [(r.user.name, r.via) for r in resolve_targets(session, level, T0 + timedelta(hours=1))]
    # Ada once, via the first target that found her.
    assert got == [("Ada", "team ops"), ("Ben", "team ops")]
    got = [(r.user.name, r.via) for r in resolve_targets(session, level, T0 + timedelta(hours=5))]
    assert got == [("Ada", "team ops")]
    got = [(r.user.name, r.via) for r in resolve_targets(session, level, T0 + timedelta(hours=9))]
    assert got == [("Ada", "user")]


def test_page_user_writes_one_row_per_enabled_method_once(session):
    world = make_world(session)
    incident = open_incident(session, world.source)
    before = session.scalar(select(func.count(Notification.id)))
    again = page_user(session, incident, world.ada, level=1, now=T0, base_url=BASE_URL)
    # Same incident, pass, round, level and user: the unique dedup key refuses a second copy.
    assert again.notification_ids == [] and again.already_queued == 2 and again.reached
    assert session.scalar(select(func.count(Notification.id))) == before
    keys = list(session.scalars(select(Notification.dedup_key).order_by(Notification.id)))
    assert keys == [f"inc{incident.id}:g1:r0:l1:u{world.ada.id}:sms:c{world.ada.contact_methods[0].id}",
                    f"inc{incident.id}:g1:r0:l1:u{world.ada.id}:email:c{world.ada.contact_methods[1].id}"]
    # A user with no enabled method is not reached; an inactive user gets nothing.
    assert not page_user(session, incident, world.cy, level=1, now=T0, base_url=BASE_URL).reached
    deactivate_user(session, world.ben, now=T0)
    assert not page_user(session, incident, world.ben, level=2, now=T0, base_url=BASE_URL).reached


def test_step_takes_a_bounded_batch_in_due_order(session):
    world = make_world(session)
    incidents = [open_incident(session, world.source, external_id=f"a{i}", now=T0 + timedelta(seconds=i))
                 for i in range(5)]
    session.commit()
    due = T0 + timedelta(minutes=11)
    assert run_escalation_step(session, now=due, base_url=BASE_URL, limit=3) == 3
    session.commit()
    assert [i.current_level for i in incidents] == [2, 2, 2, 1, 1]
    assert run_escalation_step(session, now=due, base_url=BASE_URL, limit=3) == 2
    session.commit()
    assert [i.current_level for i in incidents] == [2] * 5


def test_level_removed_mid_incident_moves_to_the_next_number(session):
    world = make_world(session)
    incident = open_incident(session, world.source)
    third = add_level(session, world.policy, level_number=3, targets=[world.ada])
    level2 = session.scalar(select(EscalationLevel).where(EscalationLevel.policy_id == world.policy.id,
                                                          EscalationLevel.level_number == 2))
    delete_level(session, level2)
    run_escalation_step(session, now=datetime(2030, 1, 1, tzinfo=UTC), base_url=BASE_URL)
    assert incident.current_level == third.level_number
