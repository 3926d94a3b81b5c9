"""The PagerDuty Events API v2 body, so tools pointed at PagerDuty switch by changing a URL.

    {"routing_key": "<key>", "event_action": "trigger", "dedup_key": "srv01/disk",
     "payload": {"summary": "Disk full on srv01", "source": "srv01", "severity": "critical",
                 "timestamp": "...", "component": "disk", "group": "prod", "class": "disk",
                 "custom_details": {...}},
     "links": [{"href": "https://...", "text": "runbook"}], "images": [{"src": ..., "href": ...}],
     "client": "Monitoring", "client_url": "https://..."}

`trigger` needs `payload.summary`, `payload.source` and `payload.severity` (critical, error,
warning, info); `acknowledge` and `resolve` need only `dedup_key`. A trigger without a
`dedup_key` gets a stable one derived from its summary and source, and the response
returns it (as PagerDuty does), so the sender can resolve it later.
"""

from __future__ import annotations

from pagerpal_core.payloads import common as p

EVENT_ACTIONS = {"trigger": p.TRIGGER, "acknowledge": p.ACKNOWLEDGE, "resolve": p.RESOLVE}
PD_SEVERITIES = ("critical", "error", "warning", "info")


def parse(body) -> p.ParsedPayload:
    """One event from a PagerDuty Events v2 body (the routing key is handled by the web)."""
    body = p.require_object(body)
    f = p.Fields()
    event_action = f.string(body, "event_action", "event_action", required=True)
    dedup_key = f.string(body, "dedup_key", "dedup_key")
    action = EVENT_ACTIONS.get(event_action) if isinstance(event_action, str) else None
    if event_action is not None and action is None and "event_action" not in f.errors:
        f.add("event_action", "must be trigger, acknowledge or resolve")
    if dedup_key is not None and len(dedup_key) > p.MAX_EXTERNAL_ID:
        f.add("dedup_key", f"must be at most {p.MAX_EXTERNAL_ID} characters")
    payload = f.mapping(body, "payload", "payload", limit=p.MAX_DETAILS_BYTES * 2)
    summary = source = severity = None
    if action == p.TRIGGER:
        if "payload" not in body:
            f.add("payload", "is required for trigger events")
        summary = f.string(payload, "summary", "payload.summary", required=True)
        source = f.string(payload, "source", "payload.source", required=True)
        severity = f.string(payload, "severity", "payload.severity", required=True)
        if isinstance(severity, str) and severity not in PD_SEVERITIES:
            f.add("payload.severity", f"must be one of {', '.join(PD_SEVERITIES)}")
        f.mapping(payload, "custom_details", "payload.custom_details")
    elif action is not None and not (dedup_key and dedup_key.strip()):
        f.add("dedup_key", f"is required for {event_action} events")
    links = p.normalise_links(f.sequence(body, "links", "links"), "links", f)
    f.raise_if_any("Event object is invalid")
    if action != p.TRIGGER:
        return p.ParsedPayload(events=[p.AlertEvent(
            action=action, external_id=dedup_key.strip(), title=dedup_key.strip()[: p.MAX_TITLE],
            raw=without_key(body), state=event_action)])
    custom = payload.get("custom_details")
    details = {
        **{k: payload[k] for k in ("source", "component", "group", "class", "timestamp") if k in payload},
        **({"custom_details": custom} if custom is not None else {}),
        **{k: body[k] for k in ("client", "client_url") if isinstance(body.get(k), str)},
    }
    links += p.link(body.get("client_url"), body.get("client") if isinstance(body.get("client"), str)
                    else "Client")
    images = body.get("images") if isinstance(body.get("images"), list) else []
    for image in images[: p.MAX_LINKS]:
        if isinstance(image, dict):
            links += p.link(image.get("href") or image.get("src"), image.get("alt") or "Image")
    external_id = dedup_key.strip() if dedup_key and dedup_key.strip() else p.fingerprint(
        "pagerduty", summary, source)
    event = p.AlertEvent(
        action=p.TRIGGER,
        external_id=external_id,
        title=p.clip_text(summary.strip(), p.MAX_TITLE),
        description=p.clip_text(f"Source: {source}", p.MAX_DESCRIPTION),
        severity=severity,
        details=details,
        links=links[: p.MAX_LINKS],
        raw=without_key(body),
        state=event_action,
    )
    return p.ParsedPayload(events=[event])


def without_key(body: dict) -> dict:
    """The body minus `routing_key`: it may be the source's key and must never be stored."""
    return {k: v for k, v in body.items() if k != "routing_key"}
