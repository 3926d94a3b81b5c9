"""The .ics export parses with the icalendar library and matches the shift list."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import icalendar
import pytest

from pagerpal_core.services.ical import escape_text, fold_line, schedule_ical, user_ical
from pagerpal_core.services.oncall import shifts_between, user_shifts_between
from pagerpal_core.services.schedules import create_entry, create_override, create_rotation, create_schedule
from tests.factories import make_user

# Reads and arithmetic over rows the other tests store on both backends: SQLite is enough here.
pytestmark = pytest.mark.backends("sqlite")

UTC = UTC
NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
START, END = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 5, tzinfo=UTC)


def events(text: str) -> list:
    calendar = icalendar.Calendar.from_ical(text)
    return [c for c in calendar.walk("VEVENT")]


def as_tuple(event) -> tuple:
    return (event.decoded("DTSTART").astimezone(UTC), event.decoded("DTEND").astimezone(UTC), str(event["SUMMARY"]))


def build(session):
    ada = make_user(session, name="Ada Lovelace")
    # A name that needs escaping and folding: comma, semicolon, non-ASCII, and length.
    ben = make_user(session, name="Ben; the \"Night\", Ωwl " + "x" * 60)
    schedule = create_schedule(session, name="Primary, EU", timezone="Europe/Berlin")
    create_rotation(session, schedule, start_date=date(2025, 2, 24), shift_unit="weeks", handoff_time="09:00",
                    participants=[ada, ben])
    create_entry(session, schedule, user=ben, starts_at=datetime(2025, 3, 12, 8, tzinfo=UTC),
                 ends_at=datetime(2025, 3, 12, 20, tzinfo=UTC))
    create_override(session, schedule, user=ada, starts_at=datetime(2025, 3, 12, 10, tzinfo=UTC),
                    ends_at=datetime(2025, 3, 12, 12, tzinfo=UTC), now=NOW)
    return ada, ben, schedule


def test_schedule_export_matches_the_shift_list(session):
    ada, ben, schedule = build(session)
    text = schedule_ical(session, schedule, now=NOW, start=START, end=END)
    shifts = shifts_between(session, schedule, START, END)
    parsed = events(text)
    assert [as_tuple(e) for e in parsed] == [(s.start, s.end, f"On call: {s.user.name}") for s in shifts]
    assert [str(e["CATEGORIES"].cats[0]) if hasattr(e["CATEGORIES"], "cats") else str(e["CATEGORIES"])
            for e in parsed][:4] == ["rotation", "rotation", "rotation", "scheduled shift"]
    # The DST change on 2025-03-30 keeps the 09:00 Berlin handoff: 07:00Z after, 08:00Z before.
    handoffs = {s.start for s in shifts if s.layer == "rotation"}
    assert datetime(2025, 3, 24, 8, tzinfo=UTC) in handoffs and datetime(2025, 3, 31, 7, tzinfo=UTC) in handoffs
    uids = [str(e["UID"]) for e in parsed]
    assert len(set(uids)) == len(uids)
    # Stable across exports (a subscribed calendar updates rather than duplicates).
    assert events(schedule_ical(session, schedule, now=NOW + timedelta(hours=1), start=START, end=END))[0]["UID"] \
        == uids[0]
    calendar = icalendar.Calendar.from_ical(text)
    assert str(calendar["VERSION"]) == "2.0"
    assert "\r\nX-WR-CALNAME:PagerPal: Primary\\, EU\r\n" in text


def test_format_follows_rfc_5545(session):
    _, ben, schedule = build(session)
    text = schedule_ical(session, schedule, now=NOW, start=START, end=END)
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert "\n" not in text.replace("\r\n", "")
    for line in text.split("\r\n"):
        assert len(line.encode("utf-8")) <= 75
    # Escaped, folded and intact after parsing.
    summaries = {str(e["SUMMARY"]) for e in events(text)}
    assert f"On call: {ben.name}" in summaries
    assert "\\;" in text and "\\," in text


def test_user_export_spans_schedules(session):
    ada, _, schedule = build(session)
    other = create_schedule(session, name="Database", timezone="America/New_York")
    create_entry(session, other, user=ada, starts_at=datetime(2025, 3, 20, tzinfo=UTC),
                 ends_at=datetime(2025, 3, 21, tzinfo=UTC))
    text = user_ical(session, ada, now=NOW, start=START, end=END)
    shifts = user_shifts_between(session, ada, START, END)
    names = {schedule.id: schedule.name, other.id: other.name}
    assert [as_tuple(e) for e in events(text)] == [(s.start, s.end, f"On call: {names[s.schedule_id]}")
                                                   for s in shifts]
    assert any(s.schedule_id == other.id for s in shifts) and any(s.layer == "override" for s in shifts)


def test_default_window_and_empty_calendar(session):
    schedule = create_schedule(session, name="empty")
    text = schedule_ical(session, schedule, now=NOW)
    assert events(text) == []
    assert icalendar.Calendar.from_ical(text)["PRODID"]


def test_escape_and_fold_helpers():
    assert escape_text("a\\b;c,d\ne") == "a\\\\b\\;c\\,d\\ne"
    folded = fold_line("SUMMARY:" + "é" * 80)
    pieces = folded.split("\r\n ")
    assert all(len(p.encode("utf-8")) <= 75 - (i > 0) for i, p in enumerate(pieces))
    assert "".join(pieces) == "SUMMARY:" + "é" * 80
