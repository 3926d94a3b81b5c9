"""The end-to-end self-test step: a synthetic alert through the real HTTP ingestion path, the outbox and
the real sender, then its recovery; the outcome and duration go to app_state.

Each stage has its own short transaction, and every outside call (the two HTTP requests to the
web, the provider send inside the dispatch pass) happens outside any transaction. The run is
timed with a monotonic clock: the duration is real wall time from the alert's POST to the
provider's answer, whatever `now` the cycle was given. See pagerpal_core/services/self_test.py.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import requests

from pagerpal_core.logs import log_fields
from pagerpal_core.services import self_test as svc
from pagerpal_core.services.notifications import clean_error
from pagerpal_worker.context import WorkerContext
from pagerpal_worker.steps import dispatch

log = logging.getLogger("pagerpal.worker.self_test")

# The web answers an alert in milliseconds; anything slower than this is a failure worth paging.
HTTP_TIMEOUT_SECONDS = 10.0
# The provider's answers that count as "the page went out".
SENT = ("sent", "delivered")
# Run the step's cheap "is a run due?" check at most this often (seconds).
CHECK_EVERY_SECONDS = 15.0


@dataclass
class SelfTestOutcome:
    """One run: whether it passed, how long the page took, and what went wrong."""

    ok: bool
    duration_ms: float | None
    error: str | None
    incident_id: int | None


def _post(ctx: WorkerContext, key: str, body: dict) -> dict:
    url = ctx.settings.base_url.rstrip("/") + "/api/v1/alerts"
    response = requests.post(url, json=body, headers={"X-API-Key": key}, timeout=HTTP_TIMEOUT_SECONDS,
                             allow_redirects=False)
    if response.status_code not in (200, 201):
        raise SelfTestFailed(f"ingestion answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise SelfTestFailed("ingestion answered something that is not JSON") from None


class SelfTestFailed(Exception):
    """A stage of the run failed; the message says which and why (no secrets)."""


def run_self_test(ctx: WorkerContext, now: datetime) -> SelfTestOutcome:
    """One end-to-end run; records its outcome (and pages the admins' policy on failure). Never raises."""
    settings = ctx.settings
    secrets = settings.secret_values()
    incident_id: int | None = None
    duration_ms: float | None = None
    error: str | None = None
    try:
        if not settings.self_test_destination:
            raise SelfTestFailed("SELF_TEST_DESTINATION is not set")
        if not settings.notification_sending_enabled:
            raise SelfTestFailed("sending is disabled (NOTIFICATION_SENDING_ENABLED=false)")
        with ctx.session_factory() as session:
            prepared = svc.prepare_self_test(session, now=now)
            session.commit()
        started = time.monotonic()
        answer = _post(ctx, prepared.key, {"title": svc.TITLE, "external_id": prepared.external_id,
                                           "severity": "info", "status": "firing",
                                           "description": "Synthetic alert of the end-to-end self-test."})
        incident_id = answer.get("incident_id")
        if answer.get("outcome") != "created" or not isinstance(incident_id, int):
            raise SelfTestFailed(f"ingestion did not open an incident (outcome {answer.get('outcome')!r})")
        with ctx.session_factory() as session:
            notification_id = svc.queue_self_test_page(session, incident_id, channel=settings.self_test_channel,
                                                       destination=settings.self_test_destination, now=now)
            session.commit()
        dispatch.run(ctx, now, dispatch.claim_limit(ctx, 100))  # the real dispatch pass and sender
        duration_ms = (time.monotonic() - started) * 1000
        with ctx.session_factory() as session:
            page = svc.notification_status(session, notification_id)
            status, last_error = (page.status, page.last_error) if page is not None else ("missing", None)
            session.commit()
        try:
            _post(ctx, prepared.key, {"title": svc.TITLE, "external_id": prepared.external_id, "status": "resolved"})
        except (SelfTestFailed, requests.RequestException) as exc:
            log.warning("self-test could not resolve its incident", extra=log_fields(error=type(exc).__name__))
        if status not in SENT:
            raise SelfTestFailed(f"the {settings.self_test_channel} page was not sent (status {status}"
                                 + (f": {last_error}" if last_error else "") + ")")
    except SelfTestFailed as exc:
        error = str(exc)
    except requests.RequestException as exc:
        error = f"could not reach the web's ingestion URL ({type(exc).__name__})"
    except Exception as exc:  # a bug here must still end as a recorded failure, not silence
        log.exception("self-test failed unexpectedly")
        error = f"unexpected {type(exc).__name__}"
    error = clean_error(error, secrets) if error else None
    outcome = SelfTestOutcome(ok=error is None, duration_ms=duration_ms, error=error, incident_id=incident_id)
    with ctx.session_factory() as session:
        svc.record_self_test(session, ok=outcome.ok, duration_ms=outcome.duration_ms, error=outcome.error,
                             incident_id=incident_id, settings=settings, now=now, base_url=settings.base_url)
        session.commit()
    if outcome.ok:
        log.info("self-test passed", extra=log_fields(duration_ms=round(duration_ms or 0, 1)))
    else:
        log.warning("self-test failed", extra=log_fields(error=error))
    return outcome


def run(ctx: WorkerContext, now: datetime, limit: int) -> int:
    """The step: open the failure incident if runs are overdue, then run one when due. Returns runs made."""
    settings = ctx.settings
    with ctx.session_factory() as session:
        svc.check_overdue(session, settings=settings, now=now, base_url=settings.base_url)
        due = svc.is_due(svc.read_self_test(session), settings=settings, now=now)
        session.commit()
    if not due:
        return 0
    run_self_test(ctx, now)
    return 1
