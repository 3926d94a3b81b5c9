"""Alert ingestion endpoints: generic JSON, Grafana, CloudWatch/SNS, Alertmanager, PagerDuty v2.

Every endpoint: authenticate the source (401/403) → check its token bucket on the row
just read (429, nothing written) → decode and parse the body (400/413/422, nothing
written) → apply the events, take the token atomically as the last statement, commit —
one transaction → answer. Paging happens inside the incident service, in the same
transaction as the new incident.
"""

from __future__ import annotations

import json
import logging
from collections import Counter

from flask import current_app, jsonify, request

from pagerpal_core.errors import DomainError, Invalid, RateLimited
from pagerpal_core.logs import log_fields
from pagerpal_core.metrics import count_alerts
from pagerpal_core.models import AlertSource
from pagerpal_core.payloads import parse_payload
from pagerpal_core.services.ingestion import CREATED, ingest_events
from pagerpal_core.services.rate_limit import peek_bucket, take_token
from pagerpal_core.services.sns import record_sns_control
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from pagerpal_web.webhooks import bp
from pagerpal_web.webhooks.source_auth import authenticate_request

log = logging.getLogger("pagerpal.webhooks")


class BadBody(DomainError):
    code, status = "bad_request", 400


def settings():
    return current_app.config["PAGERPAL"]


def decode_body():
    """The request body as decoded JSON; 400 naming the problem, 413 when too large."""
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH → 413 from werkzeug
    if not raw.strip():
        raise BadBody("a JSON body is required")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise BadBody("the body is not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise BadBody("the body is not valid JSON") from None


def _bucket_args() -> dict:
    config = settings()
    return {"capacity": config.alert_source_rate_limit_capacity,
            "refill_per_second": config.alert_source_rate_limit_refill_per_second}


def _refuse(source_name: str, retry_after: int):
    raise RateLimited(f"alert source {source_name!r} is over its rate limit; retry in {retry_after} s",
                      retry_after=retry_after)


def check_rate_limit(source: AlertSource) -> None:
    """429 at once when the source's bucket (as just read) is empty: no parsing, no writes."""
    result = peek_bucket(source, now=utcnow(), **_bucket_args())
    if not result.allowed:
        _refuse(source.name, result.retry_after)


def ingest(source: AlertSource, kind: str, body) -> tuple[list, dict | None]:
    """Parse `body` as `kind`, apply it, commit; returns (results, control record or None)."""
    parsed = parse_payload(kind, body)
    now = utcnow()
    control = None
    if parsed.control is not None:
        row = record_sns_control(db.session, source, parsed.control, now=now)
        control = {"type": parsed.control.type, "topic_arn": row.topic_arn, "status": row.status}
    results = ingest_events(db.session, source, parsed.events, now=now, base_url=settings().base_url)
    # Last statement before the commit: the source row is locked only for the commit.
    bucket = take_token(db.session, source.id, now=now, **_bucket_args())
    if not bucket.allowed:  # another request took the last token since check_rate_limit
        name = source.name
        db.session.rollback()
        _refuse(name, bucket.retry_after)
    db.session.commit()
    count_alerts(source.name, (r.outcome for r in results))
    log.info("alerts ingested", extra=log_fields(
        source_id=source.id, format=kind, outcomes=dict(Counter(r.outcome for r in results)),
        sns=control["type"] if control else None))
    return results, control


def group_response(results: list, control: dict | None = None):
    counts = Counter(r.outcome for r in results)
    body = {"status": "accepted", "counts": dict(counts), "results": [r.as_dict() for r in results]}
    if control:
        body["sns"] = control
        body["message"] = ("subscription recorded; the worker confirms it shortly"
                           if control["type"] == "SubscriptionConfirmation" else "unsubscription recorded")
    return jsonify(body), 200


@bp.post("/alerts")
def generic_alert():
    """A generic JSON alert: 201 when it opened an incident, 200 otherwise."""
    source = authenticate_request()
    check_rate_limit(source)
    results, _ = ingest(source, "generic", decode_body())
    result = results[0]
    return jsonify({"status": "accepted", **result.as_dict()}), 201 if result.outcome == CREATED else 200


@bp.post("/webhooks/grafana")
def grafana_webhook():
    """Grafana unified alerting (many alerts per call) or legacy alerting."""
    source = authenticate_request()
    check_rate_limit(source)
    return group_response(*ingest(source, "grafana", decode_body()))


@bp.post("/webhooks/alertmanager")
def alertmanager_webhook():
    """Prometheus Alertmanager webhook, version 4."""
    source = authenticate_request()
    check_rate_limit(source)
    return group_response(*ingest(source, "alertmanager", decode_body()))


@bp.post("/webhooks/cloudwatch")
def cloudwatch_webhook():
    """CloudWatch alarms via SNS (a JSON body sent as text/plain), and SNS (un)subscriptions."""
    source = authenticate_request()
    check_rate_limit(source)
    return group_response(*ingest(source, "cloudwatch", decode_body()))


@bp.post("/webhooks/pagerduty")
@bp.post("/webhooks/pagerduty/v2/enqueue")
def pagerduty_event():
    """PagerDuty Events API v2: the key may be the body's `routing_key`; answers like PagerDuty."""
    try:
        body = decode_body()
        routing_key = body.get("routing_key") if isinstance(body, dict) else None
        source = authenticate_request(routing_key if isinstance(routing_key, str) else None)
        check_rate_limit(source)
        results, _ = ingest(source, "pagerduty", body)
    except Invalid as exc:
        db.session.rollback()
        return pagerduty_invalid(exc.message, exc.fields)
    except DomainError as exc:
        if exc.status != 400:
            raise
        db.session.rollback()
        return pagerduty_invalid(exc.message, {})
    result = results[0]
    return jsonify({"status": "success", "message": "Event processed", "dedup_key": result.external_id,
                    "outcome": result.outcome, "incident_id": result.incident_id,
                    "detail": result.message}), 202


def pagerduty_invalid(message: str, fields: dict):
    """PagerDuty's 400 shape, plus PagerPal's own error object."""
    errors = [f"{name}: {problem}" for name, problem in fields.items()] or [message]
    body = {"status": "invalid event", "message": "Event object is invalid", "errors": errors,
            "error": {"code": "validation_error", "message": message,
                      **({"fields": fields} if fields else {})}}
    return jsonify(body), 400
