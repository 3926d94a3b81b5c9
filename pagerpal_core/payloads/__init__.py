"""Webhook payload parsers: pure functions from a decoded JSON body to alert events.

Each format module exposes `parse(body) -> ParsedPayload`; `PARSERS` maps a format name to
it. Parsers never touch the database: they validate, normalise and bound what the sender
said, raising `Invalid` (naming the offending field) before anything is written. What the
formats share (events, bounds, field getters, the cleaner) is in `payloads.common`.
"""

from __future__ import annotations

from pagerpal_core.payloads import alertmanager, cloudwatch, generic, grafana, pagerduty
from pagerpal_core.payloads.common import ParsedPayload, storable

# Format name → parser. The web's endpoints and the bench pick their parser here.
PARSERS = {
    "generic": generic.parse,
    "grafana": grafana.parse,
    "cloudwatch": cloudwatch.parse,
    "alertmanager": alertmanager.parse,
    "pagerduty": pagerduty.parse,
}


def parse_payload(kind: str, body) -> ParsedPayload:
    """Parse `body` (decoded JSON) as format `kind`; raises Invalid on bad input."""
    return PARSERS[kind](storable(body))
