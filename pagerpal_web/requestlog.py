"""Request ids and one structured access-log line per request.

A handler adds what it did to that line (`add_log_fields`) instead of logging a line of
its own: an alert storm writes one app line per alert, not one per step.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, g, request

from pagerpal_core.logs import log_fields, request_id_var

log = logging.getLogger("pagerpal.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def _loggable_path() -> str:
    """The path with a `<token>` segment masked: heartbeat ping URLs and action links are secrets."""
    token = (request.view_args or {}).get("token")
    return request.path.replace(token, "…") if isinstance(token, str) and token else request.path


def add_log_fields(**fields) -> None:
    """Fields for this request's access line (what the handler did: outcomes, ids)."""
    g.setdefault("log_fields", {}).update(fields)


def init_app(app: Flask) -> None:
    @app.before_request
    def assign_request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()
        request_id_var.set(g.request_id)

    @app.after_request
    def echo_request_id(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers["X-Request-ID"] = request_id
        if not log.isEnabledFor(logging.INFO):
            return response
        started = g.get("request_started")
        # The query string is left out: `?api_key=` must never reach a log line.
        # The handler's fields first: one named like the line's own cannot replace it (or fail it).
        log.info("request", extra=log_fields(**{
            **g.get("log_fields", {}),
            "method": request.method, "path": _loggable_path(), "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "remote": request.remote_addr}))
        return response

    @app.teardown_request
    def clear_request_id(_exc=None):
        request_id_var.set(None)
