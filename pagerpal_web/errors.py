"""One error shape: `{"error": {"code", "message"}}` under /api/, an HTML page elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from pagerpal_core.errors import DomainError, Invalid, RateLimited
from pagerpal_web.extensions import db

log = logging.getLogger("pagerpal.web")

# A database that is briefly gone (restarting, a dropped connection, SQLite's write lock held
# past its timeout, a deadlock) is not the request's fault: 503 with a time to come back, so
# alert senders retry instead of giving the alert up.
DATABASE_RETRY_AFTER_SECONDS = 5


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, code: str, message: str, *, fields: dict | None = None,
                   detail: dict | None = None, headers: dict | None = None):
    """A JSON error response in the common shape."""
    body = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    if detail:
        body["error"]["detail"] = detail
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def domain_error_response(exc: DomainError):
    # 429s, and any other refusal that says when to come back (an SNS certificate being fetched: 503).
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if isinstance(exc, RateLimited) or retry_after else None
    return error_response(exc.status, exc.code, exc.message, fields=exc.fields, detail=exc.detail,
                          headers=headers)


# Where api/common.py holds an API body's field errors while the service checks the rest (see
# its `body_fields`): any refusal or failure of the request then answers all of them at once.
PENDING_BODY_ERRORS = "pending_body_errors"


def pending_body_refusal(exc: Exception):
    """The one 422 naming every bad field, when the API body had errors held back; else None.

    The service's own field errors (when it refused too) are merged in. An exception of any
    other kind is what the held-back values caused, and the 422 already explains it.
    """
    pending = g.get(PENDING_BODY_ERRORS) if is_api_request() else None
    if not pending:
        return None
    fields = {**(exc.fields if isinstance(exc, Invalid) else {}), **pending}
    return error_response(422, Invalid.code, "invalid request body", fields=fields)


def _html_error(status: int, title: str, message: str):
    return render_template("error.html", status=status, title=title, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def handle_domain_error(exc: DomainError):
        db.session.rollback()
        refusal = pending_body_refusal(exc)
        if refusal is not None:
            return refusal
        if is_api_request():
            return domain_error_response(exc)
        return _html_error(exc.status, exc.code.replace("_", " ").title(), exc.message)

    @app.errorhandler(CSRFError)
    def handle_csrf(exc: CSRFError):
        if is_api_request():
            return error_response(400, "csrf_failed", exc.description)
        return _html_error(400, "Form expired or forged",
                           "The form could not be verified (missing or invalid CSRF token). "
                           "Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException):
        if is_api_request():
            code = (exc.name or "error").lower().replace(" ", "_")
            message = exc.description or exc.name
            if exc.code == 413:
                message = f"request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
            response = error_response(exc.code or 500, code, message)
            if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
                response.headers["Allow"] = ", ".join(exc.valid_methods)
            return response
        return _html_error(exc.code or 500, exc.name, exc.description or "")

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        db.session.rollback()
        refusal = pending_body_refusal(exc)
        if refusal is not None:
            log.info("request refused for its body errors", extra={"fields": {"error": type(exc).__name__}})
            return refusal
        if isinstance(exc, OperationalError):
            log.warning("database unavailable", extra={"fields": {
                "error": type(exc.orig).__name__, "detail": str(exc.orig).strip().split("\n")[0][:200]}})
            message = "the database is unavailable for a moment; retry"
            if is_api_request():
                return error_response(503, "database_unavailable", message,
                                      headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})
            return _html_error(503, "Database unavailable", message)
        log.exception("unhandled error")
        if is_api_request():
            return error_response(500, "internal_error", "internal error; see the server log")
        return _html_error(500, "Internal error", "Something went wrong; the error was logged.")
