"""What every webhook format shares: the event types, bounds, typed field getters and the cleaner.

Pure: dicts in, dataclasses out, `Invalid` (naming every bad field) on bad input.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

from pagerpal_core.errors import Invalid

# Bounds: over-long titles and descriptions are truncated (a sender must never lose a page
# over a wordy template); structured data that is too big is refused, naming the field.
MAX_TITLE = 500
MAX_DESCRIPTION = 10_000
MAX_EXTERNAL_ID = 255
MAX_SEVERITY = 64
MAX_DETAILS_BYTES = 32_768
MAX_LINKS = 20
MAX_LINK_URL = 2_000
MAX_ALERTS_PER_REQUEST = 500
# Deeper JSON in an alert is cut (see storable): no real alert nests this far.
MAX_NESTING = 32
NESTED_TOO_DEEP = "[nested too deep]"

# What an event asks for.
TRIGGER, RESOLVE, ACKNOWLEDGE, IGNORE = "trigger", "resolve", "acknowledge", "ignore"


@dataclass
class AlertEvent:
    """One alert state change as the sender reported it, normalised."""

    action: str
    external_id: str
    title: str
    description: str = ""
    severity: str | None = None          # the sender's own word, mapped per source later
    details: dict = field(default_factory=dict)
    links: list = field(default_factory=list)
    raw: dict = field(default_factory=dict)  # the sender's object for this alert (bounded later)
    state: str | None = None             # the sender's state word, e.g. ALARM, no_data


@dataclass
class SnsControl:
    """An SNS envelope that is not a notification: a (un)subscription confirmation."""

    type: str
    topic_arn: str
    subscribe_url: str | None
    message_id: str | None


@dataclass
class ParsedPayload:
    """What one request carried: alert events, and for SNS possibly a control message."""

    events: list[AlertEvent] = field(default_factory=list)
    control: SnsControl | None = None


def clip_text(value: str, limit: int) -> str:
    """`value` cut to `limit` characters with an ellipsis (truncate, never reject)."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def bounded_external_id(value: str) -> str:
    """An external id that fits the column; long ids keep a prefix plus a hash so they stay unique."""
    value = value.strip()
    if len(value) <= MAX_EXTERNAL_ID:
        return value
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
    return value[: MAX_EXTERNAL_ID - 65] + "~" + digest


def fingerprint(*parts: str) -> str:
    """A stable id for senders that give none: a SHA-256 over the identifying parts."""
    return "fp_" + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def json_size(value) -> int:
    """Bytes `value` takes as UTF-8 JSON (what the size limits count)."""
    return len(json.dumps(value, default=str, ensure_ascii=False).encode("utf-8"))


class Fields:
    """Collects field errors so one response names every problem at once."""

    def __init__(self):
        self.errors: dict[str, str] = {}

    def add(self, name: str, problem: str) -> None:
        """Record a problem with field `name`; the first problem per field is kept."""
        self.errors.setdefault(name, problem)

    def raise_if_any(self, message: str = "invalid alert payload") -> None:
        """Raise Invalid naming every recorded problem, if there are any."""
        if self.errors:
            raise Invalid(message, fields=self.errors)

    # --- typed getters: return a default and record a problem on a wrong type ---------

    def string(self, obj: dict, key: str, name: str, *, required=False, default=None):
        """`obj[key]` as text (numbers become text); records a problem and returns `default` otherwise."""
        value = obj.get(key)
        if value is None or (isinstance(value, str) and not value.strip() and required):
            if required:
                self.add(name, "is required")
            return default
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # numeric ids are common (ruleId, AWS account ids)
        if not isinstance(value, str):
            self.add(name, "must be a string")
            return default
        return value

    def mapping(self, obj: dict, key: str, name: str, *, limit: int = MAX_DETAILS_BYTES) -> dict:
        """`obj[key]` as an object within `limit` bytes of JSON; {} (and a recorded problem) otherwise."""
        value = obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(name, "must be an object")
            return {}
        if json_size(value) > limit:
            self.add(name, f"is larger than {limit} bytes")
            return {}
        return value

    def sequence(self, obj: dict, key: str, name: str) -> list:
        """`obj[key]` as a list; [] when absent, [] and a recorded problem when not an array."""
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(name, "must be an array")
            return []
        return value


def normalise_links(items, name: str, fields_: Fields) -> list[dict]:
    """`[{"href", "text"}]` from strings or objects with href/url (PagerDuty, generic)."""
    links = []
    if len(items) > MAX_LINKS:
        fields_.add(name, f"at most {MAX_LINKS} links")
        return []
    for i, item in enumerate(items):
        if isinstance(item, str):
            href, text = item, ""
        elif isinstance(item, dict):
            href = item.get("href", item.get("url"))
            text = item.get("text", item.get("title", ""))
        else:
            fields_.add(f"{name}[{i}]", "must be a URL string or an object with href")
            continue
        if not isinstance(href, str) or not href.startswith(("http://", "https://")):
            fields_.add(f"{name}[{i}]", "href must be an http(s) URL")
            continue
        if len(href) > MAX_LINK_URL:
            fields_.add(f"{name}[{i}]", f"href is longer than {MAX_LINK_URL} characters")
            continue
        links.append({"href": href, "text": clip_text(text if isinstance(text, str) else "", 200)})
    return links


def link(href, text: str) -> list[dict]:
    """A one-element link list when `href` is a usable URL, else []."""
    if isinstance(href, str) and href.startswith(("http://", "https://")) and len(href) <= MAX_LINK_URL:
        return [{"href": href, "text": text}]
    return []


def require_object(body, what: str = "body") -> dict:
    """`body` when it is a JSON object; Invalid naming `what` otherwise."""
    if not isinstance(body, dict):
        raise Invalid(f"the {what} must be a JSON object", fields={what: "must be an object"})
    return body


def storable(value, depth: int = 0):
    """`value` with every string made storable: NUL characters (PostgreSQL refuses them)
    and lone surrogates (valid in a JSON escape, not in UTF-8) become U+FFFD; NaN and
    infinities (which Python's JSON reader accepts, and 1e400 becomes) become their text,
    since PostgreSQL's JSON refuses them; anything nested deeper than MAX_NESTING becomes a
    marker string, so neither this walk nor storing the payload recurses without bound.

    An alert with odd bytes is still an alert: it is cleaned, never rejected.
    """
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (dict, list)) and depth >= MAX_NESTING:
        return NESTED_TOO_DEEP
    if isinstance(value, dict):
        return {storable(k): storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(item, depth + 1) for item in value]
    return value
