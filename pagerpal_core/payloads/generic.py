"""The generic JSON alert: `POST /api/v1/alerts`.

    {"title": "Disk full on db-1", "external_id": "disk-db-1", "severity": "critical",
     "status": "firing", "description": "...", "details": {...},
     "links": ["https://...", {"href": "https://...", "text": "runbook"}]}

Only `title` is required. Without `external_id` the alert is identified by a fingerprint
of its title (per source), so the same alert repeated dedups.
"""

from __future__ import annotations

from pagerpal_core.payloads import common as p

STATUS_ACTIONS = {
    "firing": p.TRIGGER, "triggered": p.TRIGGER, "trigger": p.TRIGGER, "problem": p.TRIGGER,
    "resolved": p.RESOLVE, "resolve": p.RESOLVE, "ok": p.RESOLVE,
}


def parse(body) -> p.ParsedPayload:
    """One event from a generic alert body; Invalid names every bad field."""
    body = p.require_object(body)
    f = p.Fields()
    title = f.string(body, "title", "title", required=True)
    external_id = f.string(body, "external_id", "external_id")
    severity = f.string(body, "severity", "severity")
    description = f.string(body, "description", "description", default="")
    status = f.string(body, "status", "status", default="firing")
    details = f.mapping(body, "details", "details")
    links = p.normalise_links(f.sequence(body, "links", "links"), "links", f)
    action = STATUS_ACTIONS.get(status.strip().lower()) if isinstance(status, str) else None
    if status is not None and action is None and "status" not in f.errors:
        f.add("status", "must be firing/triggered or resolved")
    if severity is not None and len(severity) > p.MAX_SEVERITY:
        f.add("severity", f"must be at most {p.MAX_SEVERITY} characters")
    if external_id is not None and not external_id.strip():
        f.add("external_id", "must not be empty")
    f.raise_if_any()
    title = p.clip_text(title.strip(), p.MAX_TITLE)
    event = p.AlertEvent(
        action=action,
        external_id=p.bounded_external_id(external_id) if external_id else p.fingerprint("generic", title),
        title=title,
        description=p.clip_text(description, p.MAX_DESCRIPTION),
        severity=severity,
        details=details,
        links=links,
        raw=body,
        state=status,
    )
    return p.ParsedPayload(events=[event])
