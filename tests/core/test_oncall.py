"""On-call resolution: rotations across DST, the three layers, inactive and removed people."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pagerpal_core.errors import Conflict, Invalid
from pagerpal_core.services.oncall import shifts_between, team_on_call, user_shifts_between, who_is_on_call
from pagerpal_core.services.schedules import (
    add_rotation_participant,
    create_entry,
    create_override,
    create_rotation,
    create_schedule,
    remove_rotation_participant,
    update_entry,
)
from pagerpal_core.services.teams import add_team_member, create_team
from pagerpal_core.services.users import deactivate_user
from tests.factories import make_user

UTC = UTC
T0 = datetime(2025, 1, 1, tzinfo=UTC)
# The rotation arithmetic is pure Python over stored UTC instants; the tables below run on
# SQLite only to keep the suite quick, while the layer, overlap and deactivation tests run
# on both backends (they cover storing and reading the instants).
ARITHMETIC_ONLY = pytest.mark.backends("sqlite")


def local(zone: str, text: str) -> datetime:
    """'2025-03-09 08:59' in `zone`, as an aware UTC datetime (first occurrence if ambiguous)."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def in_zone(zone: str, value: datetime) -> str:
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


@pytest.fixture
def people(session):
    return {name: make_user(session, name=name) for name in ("Ada", "Ben", "Cy", "Dee")}


def name_at(session, schedule, at):
    shift = who_is_on_call(session, schedule, at)
    return shift.user.name if shift else None


# Daily 09:00 rotation Ada → Ben → Cy starting two days before each DST change. Each row:
# (zone, rotation start date, DST day, hours of the turn that spans the change,
#  [(local time, who is on call)]). Local times around the change are the interesting part.
DAILY_DST_CASES = [
    ("America/New_York", date(2025, 3, 7), "2025-03-09", 23, [
        ("2025-03-07 08:59", None), ("2025-03-07 09:00", "Ada"), ("2025-03-08 09:00", "Ben"),
        ("2025-03-09 01:59", "Ben"), ("2025-03-09 03:00", "Ben"), ("2025-03-09 08:59", "Ben"),
        ("2025-03-09 09:00", "Cy"), ("2025-03-10 08:59", "Cy"), ("2025-03-10 09:00", "Ada")]),
    ("America/New_York", date(2025, 10, 31), "2025-11-02", 25, [
        ("2025-11-01 09:00", "Ben"), ("2025-11-02 01:30", "Ben"), ("2025-11-02 08:59", "Ben"),
        ("2025-11-02 09:00", "Cy"), ("2025-11-03 09:00", "Ada")]),
    ("Europe/Berlin", date(2025, 3, 28), "2025-03-30", 23, [
        ("2025-03-29 08:59", "Ada"), ("2025-03-29 09:00", "Ben"), ("2025-03-30 01:59", "Ben"),
        ("2025-03-30 03:00", "Ben"), ("2025-03-30 08:59", "Ben"), ("2025-03-30 09:00", "Cy")]),
    ("Europe/Berlin", date(2025, 10, 24), "2025-10-26", 25, [
        ("2025-10-25 09:00", "Ben"), ("2025-10-26 02:30", "Ben"), ("2025-10-26 08:59", "Ben"),
        ("2025-10-26 09:00", "Cy"), ("2025-10-27 09:00", "Ada"), ("2025-10-29 09:00", "Cy")]),
]


@ARITHMETIC_ONLY
@pytest.mark.parametrize("zone,start,dst_day,long_hours,expect", DAILY_DST_CASES,
                         ids=[f"{c[0]}-{c[2]}" for c in DAILY_DST_CASES])
def test_daily_handoff_stays_at_local_time_across_dst(session, people, zone, start, dst_day, long_hours,
                                                      expect):
    schedule = create_schedule(session, name="primary", timezone=zone)
    create_rotation(session, schedule, start_date=start, shift_unit="days", shift_length=1, handoff_time="09:00",
                    participants=[people["Ada"], people["Ben"], people["Cy"]])
    for when, who in expect:
        assert name_at(session, schedule, local(zone, when)) == who, when

    shifts = shifts_between(session, schedule, local(zone, f"{start} 09:00"),
                            local(zone, f"{start + timedelta(days=5)} 09:00"))
    assert [s.user.name for s in shifts] == ["Ada", "Ben", "Cy", "Ada", "Ben"]
    assert all(in_zone(zone, s.start).endswith("09:00") for s in shifts)
    assert all(s.layer == "rotation" for s in shifts)
    lengths = {in_zone(zone, s.start)[:10]: (s.end - s.start) / timedelta(hours=1) for s in shifts}
    previous_day = str(date.fromisoformat(dst_day) - timedelta(days=1))
    assert lengths[previous_day] == long_hours
    assert sorted(v for k, v in lengths.items() if k != previous_day) == [24.0] * 4


WEEKLY_CASES = [
    # (zone, first Monday, Monday after the spring change, Monday after the autumn change)
    ("America/New_York", date(2025, 3, 3), "2025-03-10 09:00", "2025-11-03 09:00"),
    ("Europe/Berlin", date(2025, 3, 24), "2025-03-31 09:00", "2025-10-27 09:00"),
]


@ARITHMETIC_ONLY
@pytest.mark.parametrize("zone,monday,after_spring,after_autumn", WEEKLY_CASES, ids=[c[0] for c in WEEKLY_CASES])
def test_weekly_handoff_keeps_local_time_through_both_changes(session, people, zone, monday, after_spring,
                                                              after_autumn):
    schedule = create_schedule(session, name="weekly", timezone=zone)
    create_rotation(session, schedule, start_date=monday, shift_unit="weeks", shift_length=1, handoff_time="09:00",
                    participants=[people["Ada"], people["Ben"]])
    assert name_at(session, schedule, local(zone, after_spring) - timedelta(minutes=1)) == "Ada"
    assert name_at(session, schedule, local(zone, after_spring)) == "Ben"
    weeks = (date.fromisoformat(after_autumn[:10]) - monday).days // 7
    shift = who_is_on_call(session, schedule, local(zone, after_autumn))
    assert shift.user.name == ["Ada", "Ben"][weeks % 2]
    assert in_zone(zone, shift.start) == after_autumn
    assert in_zone(zone, shift.end) == str(date.fromisoformat(after_autumn[:10]) + timedelta(days=7)) + " 09:00"


@ARITHMETIC_ONLY
def test_hourly_rotation_counts_elapsed_hours_through_dst(session, people):
    zone = "America/New_York"
    schedule = create_schedule(session, name="hourly", timezone=zone)
    create_rotation(session, schedule, start_date=date(2025, 3, 8), shift_unit="hours", shift_length=12,
                    handoff_time="09:00", participants=[people["Ada"], people["Ben"]])
    shifts = shifts_between(session, schedule, local(zone, "2025-03-08 09:00"), local(zone, "2025-03-10 00:00"))
    assert all(s.end - s.start == timedelta(hours=12) for s in shifts[:-1])
    # 24 elapsed hours after 09:00 EST is 10:00 EDT: hour turns do not follow the wall clock.
    assert [in_zone(zone, s.start) for s in shifts] == ["2025-03-08 09:00", "2025-03-08 21:00", "2025-03-09 10:00",
                                                        "2025-03-09 22:00"]


def test_layers_overrides_beat_entries_beat_rotations(session, people, backend):
    schedule = create_schedule(session, name="layers", timezone="Europe/Berlin")
    create_rotation(session, schedule, start_date=date(2025, 6, 1), shift_unit="days", handoff_time="00:00",
                    participants=[people["Ada"]])
    day = local("Europe/Berlin", "2025-06-10 00:00")
    entry = create_entry(session, schedule, user=people["Ben"], starts_at=day + timedelta(hours=8),
                         ends_at=day + timedelta(hours=16))
    override = create_override(session, schedule, user=people["Cy"], starts_at=day + timedelta(hours=12),
                               ends_at=day + timedelta(hours=14), reason="dentist swap", now=T0)
    shifts = shifts_between(session, schedule, day, day + timedelta(days=1))
    got = [(s.user.name, s.layer, (s.start - day) / timedelta(hours=1), (s.end - day) / timedelta(hours=1))
           for s in shifts]
    assert got == [("Ada", "rotation", 0, 8), ("Ben", "entry", 8, 12), ("Cy", "override", 12, 14),
                   ("Ben", "entry", 14, 16), ("Ada", "rotation", 16, 24)]
    assert shifts[1].source_id == entry.id and shifts[2].source_id == override.id
    on_call = who_is_on_call(session, schedule, day + timedelta(hours=13))
    assert (on_call.user.name, on_call.layer, on_call.start, on_call.end) == (
        "Cy", "override", override.starts_at, override.ends_at)


# Overlapping overrides: (name, start hour, end hour, created minute). The most recently
# created override wins wherever they overlap, whatever their start times.
OVERRIDE_CASES = [
    ("newer covers the middle", [("Ada", 0, 10, 1), ("Ben", 3, 6, 2)],
     [("Ada", 0, 3), ("Ben", 3, 6), ("Ada", 6, 10)]),
    ("older created later wins", [("Ben", 3, 6, 1), ("Ada", 0, 10, 2)], [("Ada", 0, 10)]),
    ("three-way staircase", [("Ada", 0, 6, 1), ("Ben", 4, 10, 2), ("Cy", 5, 7, 3)],
     [("Ada", 0, 4), ("Ben", 4, 5), ("Cy", 5, 7), ("Ben", 7, 10)]),
    ("gap between overrides", [("Ada", 0, 2, 2), ("Ben", 5, 7, 1)], [("Ada", 0, 2), ("Ben", 5, 7)]),
]


@pytest.mark.parametrize("overrides,expected", [c[1:] for c in OVERRIDE_CASES], ids=[c[0] for c in OVERRIDE_CASES])
def test_overlapping_overrides_newest_wins(session, people, overrides, expected):
    schedule = create_schedule(session, name="overrides", timezone="UTC")
    day = datetime(2025, 5, 1, tzinfo=UTC)
    for name, start, end, minute in overrides:
        create_override(session, schedule, user=people[name], starts_at=day + timedelta(hours=start),
                        ends_at=day + timedelta(hours=end), now=T0 + timedelta(minutes=minute))
    shifts = shifts_between(session, schedule, day, day + timedelta(days=1))
    assert [(s.user.name, (s.start - day).seconds // 3600, (s.end - day).seconds // 3600) for s in shifts] == expected
    for name, start, _end in expected:
        assert name_at(session, schedule, day + timedelta(hours=start, minutes=30)) == name


def test_entry_overlap_is_rejected_naming_the_clashing_entry(session, people, backend):
    schedule = create_schedule(session, name="entries", timezone="UTC")
    day = datetime(2025, 5, 1, tzinfo=UTC)
    first = create_entry(session, schedule, user=people["Ada"], starts_at=day, ends_at=day + timedelta(hours=8))
    # Touching is fine: [08:00, 16:00) starts where the first ends.
    second = create_entry(session, schedule, user=people["Ben"], starts_at="2025-05-01T08:00:00Z",
                          ends_at="2025-05-01T16:00:00Z")
    for start, end, clash in [(7, 9, first), (0, 24, first), (10, 11, second), (15, 17, second)]:
        with pytest.raises(Conflict) as info:
            create_entry(session, schedule, user=people["Cy"], starts_at=day + timedelta(hours=start),
                         ends_at=day + timedelta(hours=end))
        assert f"entry {clash.id}" in info.value.message
        assert info.value.detail == {"conflicting_entry_id": clash.id}
    with pytest.raises(Conflict):
        update_entry(session, second, starts_at=day + timedelta(hours=7))
    # Another schedule is independent.
    other = create_schedule(session, name="other", timezone="UTC")
    create_entry(session, other, user=people["Cy"], starts_at=day, ends_at=day + timedelta(hours=24))


@ARITHMETIC_ONLY
def test_entry_validation_reports_each_field(session, people):
    schedule = create_schedule(session, name="v", timezone="UTC")
    with pytest.raises(Invalid) as info:
        create_entry(session, schedule, user=9999, starts_at="yesterday", ends_at=None)
    assert set(info.value.fields) == {"user_id", "starts_at", "ends_at"}
    with pytest.raises(Invalid) as info:
        create_entry(session, schedule, user=people["Ada"], starts_at="2025-05-02T00:00:00Z",
                     ends_at="2025-05-01T00:00:00Z")
    assert info.value.fields == {"ends_at": "must be after starts_at"}
    with pytest.raises(Invalid) as info:
        create_schedule(session, name="", timezone="Mars/Olympus")
    assert set(info.value.fields) == {"name", "timezone"}
    with pytest.raises(Invalid) as info:
        create_rotation(session, schedule, start_date="2025-13-01", shift_unit="months", shift_length=0,
                        handoff_time="25:00")
    assert set(info.value.fields) == {"start_date", "shift_unit", "shift_length", "handoff_time"}
    with pytest.raises(Invalid):
        shifts_between(session, schedule, T0, T0 - timedelta(hours=1))


def test_deactivated_participant_is_skipped_without_moving_others(session, people, backend):
    schedule = create_schedule(session, name="rot", timezone="America/New_York")
    create_rotation(session, schedule, start_date=date(2025, 3, 1), shift_unit="days", handoff_time="09:00",
                    participants=[people["Ada"], people["Ben"], people["Cy"]])
    start = local("America/New_York", "2025-03-01 09:00")
    before = [s.user.name for s in shifts_between(session, schedule, start, start + timedelta(days=6))]
    assert before == ["Ada", "Ben", "Cy", "Ada", "Ben", "Cy"]
    deactivate_user(session, people["Ben"], now=T0)
    shifts = shifts_between(session, schedule, start, start + timedelta(days=6))
    # Ben's days go to the next person in order (Cy); Ada's and Cy's own days do not move.
    assert [(s.user.name, (s.end - s.start).days) for s in shifts] == [("Ada", 1), ("Cy", 2), ("Ada", 1),
                                                                       ("Cy", 2)]
    assert name_at(session, schedule, start + timedelta(days=1, hours=1)) == "Cy"


def test_removed_participant_closes_up_the_turn_order(session, people):
    schedule = create_schedule(session, name="rot", timezone="Europe/Berlin")
    rotation = create_rotation(session, schedule, start_date=date(2025, 3, 1), shift_unit="days",
                               handoff_time="09:00", participants=[people["Ada"], people["Ben"], people["Cy"]])
    ben = next(p for p in rotation.participants if p.user_id == people["Ben"].id)
    remove_rotation_participant(session, rotation, ben.id)
    start = local("Europe/Berlin", "2025-03-01 09:00")
    assert [s.user.name for s in shifts_between(session, schedule, start, start + timedelta(days=4))] == [
        "Ada", "Cy", "Ada", "Cy"]
    add_rotation_participant(session, rotation, people["Dee"])
    assert [s.user.name for s in shifts_between(session, schedule, start, start + timedelta(days=3))] == [
        "Ada", "Cy", "Dee"]


def test_everyone_inactive_means_nobody_and_layers_beneath_show_through(session, people):
    schedule = create_schedule(session, name="s", timezone="UTC")
    create_rotation(session, schedule, start_date=date(2025, 1, 1), shift_unit="days", handoff_time="00:00",
                    participants=[people["Ada"]])
    day = datetime(2025, 2, 1, tzinfo=UTC)
    create_entry(session, schedule, user=people["Ben"], starts_at=day, ends_at=day + timedelta(hours=12))
    create_override(session, schedule, user=people["Cy"], starts_at=day, ends_at=day + timedelta(hours=6))
    assert name_at(session, schedule, day + timedelta(hours=1)) == "Cy"
    deactivate_user(session, people["Cy"], now=T0)
    assert name_at(session, schedule, day + timedelta(hours=1)) == "Ben"
    deactivate_user(session, people["Ben"], now=T0)
    assert name_at(session, schedule, day + timedelta(hours=1)) == "Ada"
    deactivate_user(session, people["Ada"], now=T0)
    assert name_at(session, schedule, day + timedelta(hours=1)) is None
    assert shifts_between(session, schedule, day, day + timedelta(days=2)) == []


def test_new_configuration_rejects_inactive_users(session, people):
    schedule = create_schedule(session, name="s", timezone="UTC")
    rotation = create_rotation(session, schedule, start_date=date(2025, 1, 1), participants=[people["Ada"]])
    team = create_team(session, name="ops")
    deactivate_user(session, people["Ben"], now=T0)
    attempts = [
        lambda: create_entry(session, schedule, user=people["Ben"], starts_at=T0, ends_at=T0 + timedelta(hours=1)),
        lambda: create_override(session, schedule, user=people["Ben"].id, starts_at=T0,
                                ends_at=T0 + timedelta(hours=1)),
        lambda: add_rotation_participant(session, rotation, people["Ben"]),
        lambda: create_rotation(session, schedule, start_date=date(2025, 1, 1),
                                participants=[people["Ada"], people["Ben"]]),
        lambda: add_team_member(session, team, people["Ben"]),
    ]
    for attempt in attempts:
        with pytest.raises(Invalid) as info:
            attempt()
        assert any("inactive" in message for message in info.value.fields.values())


@ARITHMETIC_ONLY
def test_newest_rotation_takes_over_from_its_start(session, people):
    schedule = create_schedule(session, name="s", timezone="UTC")
    create_rotation(session, schedule, start_date=date(2025, 1, 1), shift_unit="weeks", handoff_time="00:00",
                    participants=[people["Ada"]], now=T0)
    create_rotation(session, schedule, start_date=date(2025, 2, 1), shift_unit="weeks", handoff_time="00:00",
                    participants=[people["Ben"]], now=T0 + timedelta(days=1))
    shifts = shifts_between(session, schedule, datetime(2025, 1, 25, tzinfo=UTC), datetime(2025, 2, 5, tzinfo=UTC))
    assert [(s.user.name, s.start.day) for s in shifts] == [("Ada", 25), ("Ben", 1)]


def test_team_and_user_views(session, people):
    team = create_team(session, name="ops")
    add_team_member(session, team, people["Ada"])
    first = create_schedule(session, name="primary", timezone="UTC", team=team)
    second = create_schedule(session, name="secondary", timezone="UTC", team=team.id)
    day = datetime(2025, 4, 1, tzinfo=UTC)
    create_entry(session, first, user=people["Ada"], starts_at=day, ends_at=day + timedelta(hours=8))
    create_entry(session, second, user=people["Ben"], starts_at=day, ends_at=day + timedelta(hours=4))
    create_override(session, second, user=people["Ada"], starts_at=day + timedelta(hours=4),
                    ends_at=day + timedelta(hours=6))
    assert [u.name for u in team_on_call(session, team, day + timedelta(hours=1))] == ["Ada", "Ben"]
    assert [u.name for u in team_on_call(session, team, day + timedelta(hours=5))] == ["Ada"]
    mine = user_shifts_between(session, people["Ada"], day, day + timedelta(days=1))
    assert [(s.schedule_id, s.layer, s.start.hour, s.end.hour) for s in mine] == [
        (first.id, "entry", 0, 8), (second.id, "override", 4, 6)]
