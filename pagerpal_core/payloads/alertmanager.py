"""Prometheus Alertmanager webhook (version 4), also the shape of Grafana unified alerting.

    {"version": "4", "groupKey": "...", "truncatedAlerts": 0, "status": "firing",
     "receiver": "pagerpal", "groupLabels": {...}, "commonLabels": {...},
     "commonAnnotations": {...}, "externalURL": "http://alertmanager:9093",
     "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
                 "startsAt": "...", "endsAt": "...", "generatorURL": "...", "fingerprint": "..."}]}

Every alert is its own event: its `fingerprint` is the external id (a hash of the labels
when an old sender leaves it out), and its own `status` (firing/resolved) decides.
"""

from __future__ import annotations

import json

from pagerpal_core.payloads import common as p

ALERT_STATUSES = {"firing": p.TRIGGER, "resolved": p.RESOLVE}
MAX_LABELS_BYTES = 16_384


def parse(body) -> p.ParsedPayload:
    """Events from an Alertmanager webhook body."""
    body = p.require_object(body)
    version = body.get("version")
    if version is not None and str(version) != "4":
        raise p.Invalid("unsupported Alertmanager webhook version", fields={"version": "must be 4"})
    return parse_group(body, source_name="alertmanager")


def parse_group(body: dict, *, source_name: str, extra_link_keys=()) -> p.ParsedPayload:
    """Events from an Alertmanager-style group (shared with Grafana unified alerting)."""
    f = p.Fields()
    alerts = f.sequence(body, "alerts", "alerts")
    if "alerts" not in body:
        f.add("alerts", "is required")
    elif not alerts and "alerts" not in f.errors:
        f.add("alerts", "must contain at least one alert")
    if len(alerts) > p.MAX_ALERTS_PER_REQUEST:
        f.add("alerts", f"at most {p.MAX_ALERTS_PER_REQUEST} alerts per request")
        alerts = []
    common_labels = f.mapping(body, "commonLabels", "commonLabels", limit=MAX_LABELS_BYTES)
    common_annotations = f.mapping(body, "commonAnnotations", "commonAnnotations")
    group = {k: body[k] for k in ("receiver", "groupKey", "externalURL", "orgId", "truncatedAlerts")
             if k in body}
    events = []
    for i, alert in enumerate(alerts):
        name = f"alerts[{i}]"
        if not isinstance(alert, dict):
            f.add(name, "must be an object")
            continue
        status = f.string(alert, "status", f"{name}.status", required=True)
        labels = f.mapping(alert, "labels", f"{name}.labels", limit=MAX_LABELS_BYTES)
        annotations = f.mapping(alert, "annotations", f"{name}.annotations")
        values = f.mapping(alert, "values", f"{name}.values")
        fp = f.string(alert, "fingerprint", f"{name}.fingerprint")
        action = ALERT_STATUSES.get(status.strip().lower()) if isinstance(status, str) else None
        if status is not None and action is None and f"{name}.status" not in f.errors:
            f.add(f"{name}.status", "must be firing or resolved")
        if any(not isinstance(v, str) for v in labels.values()):
            f.add(f"{name}.labels", "label values must be strings")
        if f.errors:
            continue
        merged_annotations = {**common_annotations, **annotations}
        alertname = labels.get("alertname") or common_labels.get("alertname")
        summary = _text(merged_annotations.get("summary"))
        title = summary or alertname or _text(body.get("title")) or f"{source_name} alert"
        if summary and alertname and alertname not in summary:
            title = f"{alertname}: {summary}"
        description = _text(merged_annotations.get("description")) or _text(body.get("message")) or ""
        external_id = fp.strip() if fp and fp.strip() else p.fingerprint(
            source_name, json.dumps(labels, sort_keys=True))
        links = p.link(alert.get("generatorURL"), "Source")
        links += p.link(merged_annotations.get("runbook_url"), "Runbook")
        for key, text in extra_link_keys:
            links += p.link(alert.get(key), text)
        details = {"labels": labels, "annotations": merged_annotations,
                   **({"values": values} if values else {}),
                   **({"valueString": alert["valueString"]} if isinstance(alert.get("valueString"), str)
                      else {}),
                   **{k: alert[k] for k in ("startsAt", "endsAt") if isinstance(alert.get(k), str)},
                   "group": group}
        severity = labels.get("severity") or common_labels.get("severity")
        events.append(p.AlertEvent(
            action=action,
            external_id=p.bounded_external_id(external_id),
            title=p.clip_text(title.strip(), p.MAX_TITLE),
            description=p.clip_text(description, p.MAX_DESCRIPTION),
            severity=severity if isinstance(severity, str) else None,
            details=details,
            links=links,
            raw={**alert, "group": group},
            state=status,
        ))
    f.raise_if_any(f"invalid {source_name} webhook")
    return p.ParsedPayload(events=events)


def _text(value) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
