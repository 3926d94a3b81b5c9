"""Grafana webhooks: unified alerting (Grafana 8+) and the legacy dashboard alerts.

Unified alerting sends one notification per alert group:

    {"receiver": "...", "status": "firing", "orgId": 1, "groupKey": "...",
     "alerts": [{"status": "firing", "labels": {"alertname": ..., ...},
                 "annotations": {"summary": ..., "description": ..., "runbook_url": ...},
                 "startsAt": ..., "endsAt": ..., "generatorURL": ..., "fingerprint": "c6eadffa33fcdf37",
                 "silenceURL": ..., "dashboardURL": ..., "panelURL": ..., "values": {"B": 44.2}}],
     "commonLabels": {...}, "commonAnnotations": {...}, "externalURL": ..., "title": ..., "message": ...}

Each alert is its own event; its `fingerprint` is the external id and its own `status`
decides trigger or resolve. Legacy alerting sends one rule state per request:

    {"ruleId": 1, "ruleName": "...", "ruleUrl": "...", "state": "alerting", "title": "[Alerting] ...",
     "message": "...", "evalMatches": [{"metric": ..., "value": ..., "tags": {...}}], "tags": {...},
     "imageUrl": "...", "dashboardId": 1, "panelId": 2, "orgId": 1}

`alerting` triggers, `ok` resolves; `no_data`, `pending` and `paused` are recorded only.
"""

from __future__ import annotations

from pagerpal_core.payloads import alertmanager
from pagerpal_core.payloads import common as p

LEGACY_STATES = {"alerting": p.TRIGGER, "ok": p.RESOLVE, "no_data": p.IGNORE, "pending": p.IGNORE,
                 "paused": p.IGNORE}


def parse(body) -> p.ParsedPayload:
    """Events from a Grafana unified (has `alerts`) or legacy (has `ruleId`/`state`) body."""
    body = p.require_object(body)
    if "alerts" in body:
        return alertmanager.parse_group(body, source_name="grafana", extra_link_keys=(
            ("dashboardURL", "Dashboard"), ("panelURL", "Panel"), ("silenceURL", "Silence")))
    # Unified bodies carry `state` and `title` too (for old templates), so legacy is told
    # apart by its rule fields.
    if "ruleId" in body or "ruleName" in body or "evalMatches" in body:
        return parse_legacy(body)
    raise p.Invalid("not a Grafana webhook: expected `alerts` (unified alerting) or `ruleId`/`state` "
                    "(legacy alerting)", fields={"alerts": "is required"})


def parse_legacy(body: dict) -> p.ParsedPayload:
    """One event from a legacy (pre-8) Grafana alert notification."""
    f = p.Fields()
    state = f.string(body, "state", "state", required=True)
    rule_id = f.string(body, "ruleId", "ruleId")
    rule_name = f.string(body, "ruleName", "ruleName")
    title = f.string(body, "title", "title")
    message = f.string(body, "message", "message", default="")
    tags = f.mapping(body, "tags", "tags")
    matches = f.sequence(body, "evalMatches", "evalMatches")
    action = LEGACY_STATES.get(state.strip().lower()) if isinstance(state, str) else None
    if state is not None and action is None:
        f.add("state", f"must be one of {', '.join(LEGACY_STATES)}")
    if not (rule_id or rule_name):
        f.add("ruleId", "ruleId or ruleName is required")
    if p.json_size(matches) > p.MAX_DETAILS_BYTES:
        f.add("evalMatches", f"is larger than {p.MAX_DETAILS_BYTES} bytes")
    f.raise_if_any("invalid Grafana legacy alert")
    external_id = f"rule:{rule_id}" if rule_id else p.fingerprint("grafana-legacy", rule_name)
    details = {"tags": tags, "evalMatches": matches,
               **{k: body[k] for k in ("ruleId", "dashboardId", "panelId", "orgId") if k in body}}
    links = p.link(body.get("ruleUrl"), "Grafana rule") + p.link(body.get("imageUrl"), "Panel image")
    event = p.AlertEvent(
        action=action,
        external_id=p.bounded_external_id(external_id),
        title=p.clip_text((title or rule_name or f"Grafana rule {rule_id}").strip(), p.MAX_TITLE),
        description=p.clip_text(message, p.MAX_DESCRIPTION),
        severity=tags.get("severity") if isinstance(tags.get("severity"), str) else None,
        details=details,
        links=links,
        raw=body,
        state=state,
    )
    return p.ParsedPayload(events=[event])
