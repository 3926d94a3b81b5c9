"""Field parsing shared by the configuration services (teams, schedules, escalation).

Each helper takes the raw value the API or UI received, the field name, and an `errors`
dict; it returns the parsed value or records a per-field message and returns None, so a
service can report every bad field at once in one `Invalid(fields=errors)`.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from pagerpal_core.db import MAX_ROW_ID
from pagerpal_core.errors import Invalid
from pagerpal_core.timeutil import as_utc, parse_iso

# Sentinel for "argument not given" in update functions, where None is a real value.
UNSET = object()


def clean_text(value, field: str, errors: dict, *, max_len: int, required: bool = True) -> str | None:
    """A stripped string of at most `max_len` characters (non-empty when `required`)."""
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        errors[field] = "is required" if required else "must be a string"
        return None
    value = value.strip()
    if len(value) > max_len:
        errors[field] = f"must be at most {max_len} characters"
        return None
    problem = text_problem(value)
    if problem:
        errors[field] = problem
        return None
    return value


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None: PostgreSQL refuses NUL characters, and a lone
    surrogate (valid in a JSON escape, not in UTF-8) cannot be encoded at all."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    return None


def clean_int(value, field: str, errors: dict, *, minimum: int | None = None,
              maximum: int | None = None) -> int | None:
    """An integer within [minimum, maximum] (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        errors[field] = "must be an integer"
        return None
    if minimum is not None and value < minimum:
        errors[field] = f"must be at least {minimum}"
        return None
    if maximum is not None and value > maximum:
        errors[field] = f"must be at most {maximum}"
        return None
    return value


def clean_timezone(value, field: str, errors: dict) -> str | None:
    """An IANA time zone name that zoneinfo knows."""
    if isinstance(value, str) and value.strip():
        try:
            ZoneInfo(value.strip())
            return value.strip()
        except (ZoneInfoNotFoundError, ValueError):
            pass
    errors[field] = "must be an IANA time zone such as Europe/Berlin"
    return None


def clean_instant(value, field: str, errors: dict) -> datetime | None:
    """An aware UTC datetime from a datetime or an ISO-8601 string (naive means UTC)."""
    if isinstance(value, datetime):
        return as_utc(value)
    try:
        return parse_iso(value)
    except (ValueError, TypeError):
        errors[field] = "must be an ISO-8601 timestamp such as 2025-03-09T09:00:00Z"
        return None


def clean_date(value, field: str, errors: dict) -> date | None:
    """A calendar date from a date or a YYYY-MM-DD string."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    errors[field] = "must be a date such as 2025-03-09"
    return None


def clean_time_of_day(value, field: str, errors: dict) -> str | None:
    """A time of day as HH:MM (24-hour)."""
    if isinstance(value, str):
        parts = value.strip().split(":")
        if len(parts) == 2 and all(p.isdigit() and len(p) == 2 for p in parts):
            hour, minute = int(parts[0]), int(parts[1])
            if hour < 24 and minute < 60:
                return f"{hour:02d}:{minute:02d}"
    errors[field] = "must be a time of day as HH:MM, such as 09:00"
    return None


def lookup(session: Session, model, value, field: str, errors: dict, *, label: str):
    """The `model` row given as an instance or an id; records "no such <label>" otherwise."""
    if isinstance(value, model):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        errors[field] = f"must be the id of a {label}"
        return None
    row = session.get(model, value) if 0 < value <= MAX_ROW_ID else None
    if row is None:
        errors[field] = f"no {label} with id {value}"
    return row


def lookup_active_user(session: Session, value, field: str, errors: dict):
    """An active user given as an instance or an id; inactive users are refused.

    New configuration may not point at a deactivated user; existing rows keep theirs.
    """
    from pagerpal_core.models import User

    user = lookup(session, User, value, field, errors, label="user")
    if user is not None and not user.active:
        errors[field] = f"user {user.name or user.email} is inactive"
        return None
    return user


def raise_if(errors: dict, message: str) -> None:
    """Raise Invalid(message, fields=errors) when any field was bad."""
    if errors:
        raise Invalid(message, fields=errors)
