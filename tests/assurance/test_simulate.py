"""The simulator: who each level would page at T, and why — across the 2027 DST changes, with overrides.

A daily rotation hands over at 09:00 on the schedule's clock. Around a DST change that handoff
moves by an hour in UTC, so a simulator doing UTC arithmetic picks the wrong person for that
hour; each case below asks about both sides of the handoff hour on the change day.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from pagerpal_core.services.escalation_policies import create_policy
from pagerpal_core.services.schedules import create_entry, create_override, create_rotation, create_schedule
from pagerpal_core.services.simulate import simulate_policy
from pagerpal_core.services.teams import create_team
from tests.factories import make_user

# Reads and arithmetic over rows the other tests store on both backends: SQLite is enough here.
pytestmark = pytest.mark.backends("sqlite")


def _z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _world(session, timezone: str, start: date):
    ada, ben, cy = (make_user(session, name=n) for n in ("Ada", "Ben", "Cy"))
    schedule = create_schedule(session, name=f"primary {timezone}", timezone=timezone)
    # Daily turns at 09:00 local: Ada on even days since `start`, Ben on odd ones.
    create_rotation(session, schedule, start_date=start, shift_unit="days", handoff_time="09:00",
                    participants=[ada, ben])
    policy = create_policy(session, name=f"p {timezone}", levels=[
        {"delay_minutes": 5, "targets": [{"type": "schedule", "id": schedule.id}]},
        {"delay_minutes": 15, "targets": [{"type": "user", "id": cy.id}]},
    ])
    return policy, schedule, (ada, ben, cy)


def _level1(session, policy, at: datetime) -> tuple[str, str]:
    simulation = simulate_policy(session, policy, at)
    reach = simulation.levels[0].reaches
    assert len(reach) == 1
    return reach[0].user.name, reach[0].reason


# (zone, change day, UTC instants just before / after the 09:00 local handoff on that day, who holds
#  each). 2027-03-01 is the rotation's first day (Ada); days since then decide the turn.
CASES = [
    # EU spring forward 2027-03-28 (CET → CEST): 09:00 local is 07:00Z that day (08:00Z the day before).
    ("Europe/Berlin", "2027-03-28", "2027-03-28T06:59:00", "Ada", "2027-03-28T07:01:00", "Ben"),
    # EU fall back 2027-10-31 (CEST → CET): 09:00 local is 08:00Z that day (07:00Z the day before).
    ("Europe/Berlin", "2027-10-31", "2027-10-31T07:59:00", "Ben", "2027-10-31T08:01:00", "Ada"),
    # US spring forward 2027-03-14 (EST → EDT): 09:00 local is 13:00Z that day (14:00Z the day before).
    ("America/New_York", "2027-03-14", "2027-03-14T12:59:00", "Ada", "2027-03-14T13:01:00", "Ben"),
    # US fall back 2027-11-07 (EDT → EST): 09:00 local is 14:00Z that day (13:00Z the day before).
    ("America/New_York", "2027-11-07", "2027-11-07T13:59:00", "Ada", "2027-11-07T14:01:00", "Ben"),
]


@pytest.mark.parametrize("zone,day,before,before_name,after,after_name", CASES,
                         ids=["eu-spring", "eu-fall", "us-spring", "us-fall"])
def test_right_person_on_both_sides_of_the_2027_dst_changes(session, zone, day, before, before_name, after,
                                                            after_name):
    policy, schedule, _ = _world(session, zone, date(2027, 3, 1))
    assert _level1(session, policy, _z(before)) == (before_name, "rotation")
    assert _level1(session, policy, _z(after)) == (after_name, "rotation")
    # The turn that just began ends at the next 09:00 on the schedule's clock, shown with its date.
    simulation = simulate_policy(session, policy, _z(after))
    reach = simulation.levels[0].reaches[0]
    local_end = reach.until.astimezone(ZoneInfo(zone))
    assert (local_end.date(), local_end.time()) == (date.fromisoformat(day) + timedelta(days=1), time(9, 0))
    assert reach.until_local(simulation.at).endswith("09:00 " + local_end.tzname())


def test_an_override_wins_and_says_until_when(session):
    policy, schedule, (ada, ben, cy) = _world(session, "Europe/Berlin", date(2027, 3, 1))
    # Cy covers 2027-03-28 from 09:00 to 13:00 CEST (07:00Z-11:00Z), on the spring-forward day.
    create_override(session, schedule, user=cy, starts_at="2027-03-28T07:00:00Z", ends_at="2027-03-28T11:00:00Z")
    simulation = simulate_policy(session, policy, _z("2027-03-28T09:00:00"))
    reach = simulation.levels[0].reaches[0]
    assert (reach.user.name, reach.reason, reach.until) == ("Cy", "override", _z("2027-03-28T11:00:00"))
    assert reach.explain(simulation.at) == "override until 13:00 CEST, schedule primary Europe/Berlin"
    assert simulation.summary() == "Cy (override until 13:00 CEST, schedule primary Europe/Berlin)"
    # Level 2 names Cy directly; its delay is reported.
    level2 = simulation.levels[1]
    assert (level2.level_number, level2.delay_minutes) == (2, 15)
    assert [(r.user.name, r.reason, r.explain(simulation.at)) for r in level2.reaches] == [
        ("Cy", "user", "named on the level")]
    # After the override ends, the rotation shows through again.
    assert _level1(session, policy, _z("2027-03-28T11:00:00")) == ("Ben", "rotation")


def test_entries_teams_and_nobody(session):
    ada, ben = make_user(session, name="Ada"), make_user(session, name="Ben")
    team = create_team(session, name="ops")
    schedule = create_schedule(session, name="ops-hours", timezone="America/New_York", team=team)
    create_entry(session, schedule, user=ben, starts_at="2027-11-07T05:00:00Z", ends_at="2027-11-07T17:00:00Z")
    policy = create_policy(session, name="team policy", levels=[{"targets": [{"type": "team", "id": team.id}]}])
    simulation = simulate_policy(session, policy, _z("2027-11-07T12:00:00"))
    reach = simulation.levels[0].reaches[0]
    assert (reach.user.name, reach.reason, reach.team.name) == ("Ben", "entry", "ops")
    assert reach.explain(simulation.at) == "scheduled shift until 12:00 EST, team ops, schedule ops-hours"
    assert simulate_policy(session, policy, _z("2027-11-07T18:00:00")).summary() == "nobody"
    assert ada.active


def test_who_is_on_call_cli(app, runner):
    from pagerpal_web.extensions import db

    with app.app_context():
        policy, schedule, (ada, ben, cy) = _world(db.session, "America/New_York", date(2027, 3, 1))
        create_override(db.session, schedule, user=cy, starts_at="2027-11-07T14:30:00Z",
                        ends_at="2027-11-07T18:00:00Z")
        db.session.commit()
        policy_id = policy.id
    result = runner.invoke(args=["pagerpal", "who-is-on-call", "--policy", str(policy_id),
                                 "--at", "2027-11-07T13:59:00Z"])
    assert result.exit_code == 0, result.output
    assert "level 1 (escalates after 5 min): Ada (rotation turn until 09:00 EST" in result.output
    assert "level 2 (escalates after 15 min): Cy (named on the level)" in result.output
    result = runner.invoke(args=["pagerpal", "who-is-on-call", "--at", "2027-11-07T15:00:00Z", "--json"])
    assert result.exit_code == 0, result.output
    [only] = json.loads(result.output)
    assert only["levels"][0]["reaches"][0]["name"] == "Cy"
    reach = only["levels"][0]["reaches"][0]
    assert reach["explanation"] == "override until 13:00 EST, schedule primary America/New_York"
    for args, message in ((["--at", "soon"], "--at must be"), (["--policy", "99999"], "not found"),
                          (["--at", "1900-01-01T00:00:00Z"], "at must be from 1970")):
        result = runner.invoke(args=["pagerpal", "who-is-on-call", *args])
        assert result.exit_code == 1 and message in result.output, result.output
