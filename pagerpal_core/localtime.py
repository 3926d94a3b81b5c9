"""Times for people: an instant shown on a reader's clock, with the UTC time kept beside it.

The database and the code keep UTC (DESIGN invariant 5); only display converts. Format
strings are written the UTC way ("%H:%M UTC"); shown in another zone the literal "UTC"
becomes that zone's abbreviation ("CET", "EDT"), so every caller keeps one format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pagerpal_core.timeutil import as_utc

DEFAULT_FORMAT = "%Y-%m-%d %H:%M UTC"
UTC_TITLE_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


@dataclass(frozen=True)
class ShownTime:
    """An instant as shown: `text` on the reader's clock, `utc` for the hover, `iso` for machines."""

    text: str
    utc: str
    iso: str
    zone: str


def zone_or_utc(name: str | None) -> ZoneInfo:
    """The IANA zone `name`, or UTC when it is empty or unknown (a stale name never breaks a page)."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def show_time(moment: datetime, zone_name: str | None, fmt: str = DEFAULT_FORMAT) -> ShownTime:
    """`moment` formatted with `fmt` in zone `zone_name` (UTC when unknown), with its UTC form."""
    moment = as_utc(moment)
    zone = zone_or_utc(zone_name)
    local = moment.astimezone(zone)
    local_fmt = fmt if zone.key == "UTC" else fmt.replace("UTC", "%Z")
    return ShownTime(text=local.strftime(local_fmt), utc=moment.astimezone(UTC).strftime(UTC_TITLE_FORMAT),
                     iso=moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), zone=zone.key)
