"""iCalendar (RFC 5545) export of on-call shifts, for a schedule and for a user.

Built on `oncall.shifts_between`, so the calendar shows exactly what paging uses. Written
by hand (the format is small): CRLF line endings, lines folded at 75 octets without
splitting a UTF-8 character, TEXT values escaped, times in UTC ("...Z"). Each shift's UID
is stable across exports (schedule, layer, row and start), so a subscribed calendar
updates events instead of duplicating them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from pagerpal_core.models import Schedule, User
from pagerpal_core.services.oncall import Shift, shifts_between, user_shifts_between
from pagerpal_core.timeutil import as_utc

PRODID = "-//PagerPal//On-call schedules//EN"
# What an export covers unless asked otherwise: a week back, eight weeks ahead.
DEFAULT_PAST = timedelta(days=7)
DEFAULT_FUTURE = timedelta(days=56)
LAYER_LABELS = {"override": "override", "entry": "scheduled shift", "rotation": "rotation"}


def escape_text(value: str) -> str:
    """Escape a TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma, newline."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def fold_line(line: str) -> str:
    """Fold a content line into 75-octet pieces joined by CRLF + space (RFC 5545 3.1)."""
    encoded = line.encode("utf-8")
    if len(encoded) <= 75:
        return line
    pieces, current, size, limit = [], [], 0, 75
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            pieces.append("".join(current))
            # Continuation lines begin with one space, which counts towards their 75 octets.
            current, size, limit = [], 0, 74
        current.append(char)
        size += width
    pieces.append("".join(current))
    return "\r\n ".join(pieces)


def format_utc(value: datetime) -> str:
    """A DATE-TIME in UTC form: 20250309T090000Z."""
    return as_utc(value).strftime("%Y%m%dT%H%M%SZ")


def _event(shift: Shift, *, schedule_name: str, stamp: datetime, for_user: bool) -> list[str]:
    person = shift.user.name or shift.user.email
    layer = LAYER_LABELS.get(shift.layer, shift.layer)
    summary = f"On call: {schedule_name}" if for_user else f"On call: {person}"
    description = f"{person} is on call for {schedule_name} ({layer})."
    uid = (f"pagerpal-s{shift.schedule_id}-{shift.layer}{shift.source_id}-u{shift.user_id}"
           f"-{format_utc(shift.start)}")
    return [
        "BEGIN:VEVENT",
        f"UID:{uid}@pagerpal",
        f"DTSTAMP:{format_utc(stamp)}",
        f"DTSTART:{format_utc(shift.start)}",
        f"DTEND:{format_utc(shift.end)}",
        f"SUMMARY:{escape_text(summary)}",
        f"DESCRIPTION:{escape_text(description)}",
        f"CATEGORIES:{escape_text(layer)}",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
    ]


def _calendar(name: str, events: list[list[str]]) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN", "METHOD:PUBLISH",
             f"X-WR-CALNAME:{escape_text(name)}"]
    for event in events:
        lines.extend(event)
    lines.append("END:VCALENDAR")
    return "".join(fold_line(line) + "\r\n" for line in lines)


def _window(now: datetime, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    return (as_utc(start) if start else now - DEFAULT_PAST), (as_utc(end) if end else now + DEFAULT_FUTURE)


def schedule_ical(session: Session, schedule: Schedule, *, now: datetime, start: datetime | None = None,
                  end: datetime | None = None) -> str:
    """The schedule's shifts in [start, end) (default: a week back to eight weeks ahead) as .ics text."""
    start, end = _window(now, start, end)
    events = [_event(s, schedule_name=schedule.name, stamp=now, for_user=False)
              for s in shifts_between(session, schedule, start, end)]
    return _calendar(f"PagerPal: {schedule.name}", events)


def user_ical(session: Session, user: User, *, now: datetime, start: datetime | None = None,
              end: datetime | None = None) -> str:
    """`user`'s shifts across every schedule in [start, end) as .ics text."""
    start, end = _window(now, start, end)
    names: dict[int, str] = {}
    events = []
    for shift in user_shifts_between(session, user, start, end):
        if shift.schedule_id not in names:
            names[shift.schedule_id] = session.get(Schedule, shift.schedule_id).name
        events.append(_event(shift, schedule_name=names[shift.schedule_id], stamp=now, for_user=True))
    return _calendar(f"PagerPal: {user.name or user.email} on call", events)
