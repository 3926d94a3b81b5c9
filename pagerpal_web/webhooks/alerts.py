"""Alert ingestion endpoints: generic JSON, Grafana, CloudWatch/SNS, Alertmanager, PagerDuty v2.

Every endpoint: authenticate the source (401/403; from the process's short-lived source
cache) → refuse at once a source whose bucket this process knows to be empty (429, nothing
read or written) → decode and parse the body once (400/413/422, nothing written) → apply
the events and take the source's token, commit → answer. On PostgreSQL a repeat is one
autocommitted statement that takes the token and counts the occurrence together (see
services/ingestion.py); a rate-limited request writes nothing.
Paging happens inside the incident service, in the same transaction as the new incident.
A format whose key may travel in the body (PagerDuty's `routing_key`) decodes the body to
find it only when no header carries a key. Refusals count against the rate limit too
(services/refused_requests.py): after authentication a refused request spends a token of
its source; a 401/403 is counted per client address (429 past the limit). One log line per
request (the access line, with the source, format and outcomes), none per step.

When the database says the cached source went out of date (key regenerated, source
deactivated or edited), the transaction is rolled back and the request authenticates
again from the database, once.

The endpoints are one view over the `FORMATS` table: a format differs only in its path,
where its key may travel and how its answer looks.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, jsonify

from pagerpal_core.db import in_transaction
from pagerpal_core.errors import Conflict, DomainError, Forbidden, Invalid, RateLimited, Unauthorized
from pagerpal_core.metrics import count_alerts
from pagerpal_core.payloads import parse_payload
from pagerpal_core.services.ingestion import CREATED, ingest_events, rate_limited_error
from pagerpal_core.services.rate_limit import SourceChanged, TokenBucket
from pagerpal_core.services.refused_requests import (
    charge_refused_request,
    count_unauthenticated,
    new_unauthenticated_limiter,
)
from pagerpal_core.services.sns import record_sns_control
from pagerpal_core.services.source_cache import SOURCE_CACHE, SourceSnapshot
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import client_address
from pagerpal_web.bodies import request_json
from pagerpal_web.config import settings
from pagerpal_web.extensions import db
from pagerpal_web.requestlog import add_log_fields
from pagerpal_web.webhooks import API_PREFIX, bp
from pagerpal_web.webhooks.lean import json_response, skip_sessions
from pagerpal_web.webhooks.sns_verify import check_sns_signature
from pagerpal_web.webhooks.source_auth import authenticate_request, forget_source, presented_key


def decode_body():
    """The request body as decoded JSON; 400 naming the problem, 413 when too large.

    NaN and Infinity are kept here (an alert is never refused over an odd number) and
    stored as text by the payload cleaner.
    """
    return request_json(finite_only=False)


def _bucket() -> TokenBucket:
    config = settings()
    return TokenBucket(config.alert_source_rate_limit_capacity, config.alert_source_rate_limit_refill_per_second)


def check_rate_limit(source: SourceSnapshot) -> None:
    """429 at once while this process knows the source's bucket is empty: no parsing, no query.

    Learnt from the last refusal (tokens only come back with time, so it holds for every
    process); the statement that takes the token still decides every other request.
    """
    wait = SOURCE_CACHE.empty_for(source.key_hash)
    if wait > 0:
        raise rate_limited_error(source.name, math.ceil(wait))


def ingest(source: SourceSnapshot, kind: str, body) -> tuple[list, dict | None]:
    """Parse `body` as `kind`, apply it and take the source's token, commit; returns
    (results, control record or None). Raises SourceChanged after rolling back."""
    parsed = parse_payload(kind, body)
    now = utcnow()
    control = None
    try:
        if parsed.control is not None:
            row = record_sns_control(db.session, source, parsed.control, now=now)
            control = {"type": parsed.control.type, "topic_arn": row.topic_arn, "status": row.status}
        # autocommit: a lone repeat is one statement committed on its own (nothing else to do).
        results = ingest_events(db.session, source, parsed.events, now=now, base_url=settings().base_url,
                                bucket=_bucket(), autocommit=True, engine=db.engine)
    except RateLimited as exc:  # nothing this request wrote stays
        db.session.rollback()
        SOURCE_CACHE.note_empty(source.key_hash, getattr(exc, "wait", 0.0))
        raise
    except SourceChanged:
        db.session.rollback()
        raise
    if in_transaction(db.session):  # else everything was autocommitted (a lone alert on PostgreSQL)
        db.session.commit()
    outcomes = Counter(r.outcome for r in results)
    count_alerts(source.name, (r.outcome for r in results))
    add_log_fields(source_id=source.id, format=kind, outcomes=dict(outcomes),
                   sns=control["type"] if control else None)
    return results, control


def group_response(results: list, control: dict | None = None):
    """200 with per-outcome counts and every result (formats that carry many alerts per call)."""
    counts = Counter(r.outcome for r in results)
    body = {"status": "accepted", "counts": dict(counts), "results": [r.as_dict() for r in results]}
    if control:
        body["sns"] = control
        body["message"] = ("subscription recorded; the worker confirms it shortly"
                           if control["type"] == "SubscriptionConfirmation" else "unsubscription recorded")
    return jsonify(body), 200


def single_response(results: list, control: dict | None = None):
    """One alert's result: 201 when it opened an incident, 200 otherwise."""
    result = results[0]
    return json_response({"status": "accepted", **result.as_dict()}, 201 if result.outcome == CREATED else 200)


def pagerduty_response(results: list, control: dict | None = None):
    """202 in PagerDuty's own shape, plus what PagerPal did with the event."""
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


@dataclass(frozen=True)
class WebhookFormat:
    """How one sender format reaches PagerPal."""

    path: str                       # under API_PREFIX, as the README documents it
    summary: str                    # the endpoint's description (help and OpenAPI)
    answer: Callable = group_response
    aliases: tuple[str, ...] = ()   # further paths senders already use
    body_key: str | None = None     # a body field that may carry the source key
    # Renders a bad body (400) or a refused event (422) in the sender's own shape, as a 400.
    refusal: Callable[[str, dict], object] | None = None


# Format name (also the parser's name in pagerpal_core.payloads.PARSERS) → its endpoint.
FORMATS: dict[str, WebhookFormat] = {
    "generic": WebhookFormat("/alerts", "A generic JSON alert: 201 when it opened an incident, 200 otherwise.",
                             answer=single_response),
    "grafana": WebhookFormat("/webhooks/grafana", "Grafana unified alerting (many alerts per call) or legacy "
                                                  "alerting."),
    "alertmanager": WebhookFormat("/webhooks/alertmanager", "Prometheus Alertmanager webhook, version 4."),
    "cloudwatch": WebhookFormat("/webhooks/cloudwatch", "CloudWatch alarms via SNS (a JSON body sent as "
                                                        "text/plain), and SNS (un)subscriptions."),
    "pagerduty": WebhookFormat("/webhooks/pagerduty", "PagerDuty Events API v2: the key may be the body's "
                                                      "`routing_key`; answers like PagerDuty.",
                               answer=pagerduty_response, aliases=("/webhooks/pagerduty/v2/enqueue",),
                               body_key="routing_key", refusal=pagerduty_invalid),
}
# The one table of where each kind of source posts (full paths); the UI and API show it to operators.
WEBHOOK_PATHS: dict[str, str] = {kind: API_PREFIX + fmt.path for kind, fmt in FORMATS.items()}


def decode_for_key():
    """The body decoded only to look for a key in it; None when it does not decode."""
    try:
        return decode_body()
    except DomainError:
        return None


def authenticate_counted(key: str | None) -> SourceSnapshot:
    """`authenticate_request`, with every refusal (401, 403) counted per client address: past
    the limit the answer is 429 (services/refused_requests.py)."""
    try:
        return authenticate_request(key)
    except (Unauthorized, Forbidden):
        db.session.rollback()
        limiter = current_app.extensions.setdefault("pagerpal.unauthenticated", new_unauthenticated_limiter())
        count_unauthenticated(limiter, client_address())
        raise


def charge_refusal(source: SourceSnapshot, exc: DomainError) -> None:
    """A request refused after authentication (bad body, bad signature) spends the source's
    token like an accepted one; with none left it is answered 429 instead. Refusals that are
    not the sender's doing (429, 503 certificate pending, 409) spend nothing more."""
    if not 400 <= exc.status < 500 or isinstance(exc, (RateLimited, Conflict)):
        return
    db.session.rollback()  # nothing the refused request did stays
    limited = charge_refused_request(db.session, source, now=utcnow(), bucket=_bucket())
    db.session.commit()
    if limited is not None:
        SOURCE_CACHE.note_empty(source.key_hash, limited.wait)
        raise limited from None


def receive_alert(kind: str):
    """The body of every ingestion endpoint (see the module docstring for the order of checks)."""
    fmt = FORMATS[kind]
    try:
        body = key = None
        if fmt.body_key and presented_key()[0] is None:
            # No key in the headers: it may be in the body (PagerDuty's routing_key). The body
            # is only decoded to find it — parsed after authentication like any other — and
            # one that does not decode carries no key (401, counted per address).
            body = decode_for_key()
            key = body.get(fmt.body_key) if isinstance(body, dict) else None
            key = key if isinstance(key, str) else None
        for attempt in (1, 2):
            source = authenticate_counted(key)
            check_rate_limit(source)
            try:
                if body is None:
                    body = decode_body()
                if kind == "cloudwatch":
                    check_sns_signature(source, body)  # 403 unless SNS signed it (per source setting)
                results, control = ingest(source, kind, body)
                break
            except SourceChanged:
                # The cached source is out of date: read it again (401/403 if revoked).
                forget_source(source)
                if attempt == 2:
                    raise Conflict("the alert source changed while the alert was ingested; retry") from None
            except DomainError as exc:
                charge_refusal(source, exc)
                raise
    except DomainError as exc:
        if fmt.refusal is None or not (isinstance(exc, Invalid) or exc.status == 400):
            raise
        db.session.rollback()
        return fmt.refusal(exc.message, exc.fields if isinstance(exc, Invalid) else {})
    return fmt.answer(results, control)


def _endpoint(kind: str) -> Callable:
    def view():
        return receive_alert(kind)

    view.__name__ = view.__qualname__ = f"{kind}_webhook"
    view.__doc__ = FORMATS[kind].summary
    return view


for _kind, _format in FORMATS.items():
    _view = _endpoint(_kind)
    for _path in (_format.path, *_format.aliases):
        bp.add_url_rule(_path, endpoint=_view.__name__, view_func=_view, methods=["POST"])

# Alert senders carry no browser session: their requests skip the cookie session entirely.
bp.record_once(lambda state: skip_sessions(state.app, [API_PREFIX + path for fmt in FORMATS.values()
                                                       for path in (fmt.path, *fmt.aliases)]))
