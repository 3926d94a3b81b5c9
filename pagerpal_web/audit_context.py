"""The audit log's request context: who (kind), from where, which request — set once per request.

Core services write audit rows without knowing about Flask; they read this plain
`AuditContext` instead (pagerpal_core.services.audit). The acting account itself is the
caller the auth layer names on the session when it authenticates the request.
"""

from __future__ import annotations

from flask import Flask, g

from pagerpal_core.services.audit import AuditContext, reset_audit_context, set_audit_context
from pagerpal_web.auth import client_address
from pagerpal_web.errors import is_api_request

_TOKEN_KEY = "_audit_context_token"


def request_audit_context() -> AuditContext:
    """This request's context: a user (UI session or API credentials), its channel and its address."""
    return AuditContext(actor_kind="user", via="api" if is_api_request() else "ui",
                        request_id=g.get("request_id"), client_address=client_address())


def init_app(app: Flask) -> None:
    """Set the audit context before every request and drop it afterwards."""

    @app.before_request
    def set_request_audit_context():
        setattr(g, _TOKEN_KEY, set_audit_context(request_audit_context()))

    @app.teardown_request
    def clear_request_audit_context(_exc=None):
        token = g.pop(_TOKEN_KEY, None)
        if token is not None:
            try:
                reset_audit_context(token)
            except ValueError:  # created in another context (a streamed response); nothing to undo here
                pass
