"""The management API under /api/v1: HTTP Basic auth of a real account, roles per route.

One module per resource. Safe methods need the viewer role; anything else needs the role
its view declares with `@requires_role`, admin when it declares none.
"""

from flask import Blueprint, request

from pagerpal_web.auth import api_guard
from pagerpal_web.browser_safety import origin_allowed
from pagerpal_web.errors import error_response

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Browsers prompt for, and then cache, credentials only for the schemes they know (Basic,
# Digest, ...). An anonymous request is told the scheme under a name no browser acts on.
QUIET_CHALLENGE = 'xBasic realm="PagerPal API", charset="UTF-8"'


def refuse_browser_forgery():
    """Before authentication: refuse what a page on another site could make a browser send.

    A browser attaches Basic credentials it has cached for this host to any request for it,
    even one a form on another site submits. So every management request that carries an
    Origin must come from this site or ALLOWED_ORIGINS (403; "null" from a sandboxed frame
    included), and writes must be `application/json` (415): a cross-site form can only send
    urlencoded, multipart or text/plain. A write with no body and no Content-Type (`curl -X
    POST .../deactivate`) is accepted: no form sends one, and a script on another site that
    could has to send its Origin too.
    """
    if request.endpoint is None:
        return None  # 404/405: the error handler answers
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin):
        return error_response(403, "cross_origin_request", f"requests from origin {origin[:100]!r} are not "
                              "accepted; the management API is for scripts, or list the origin in ALLOWED_ORIGINS")
    if request.method in WRITE_METHODS and not request.is_json:
        has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if has_body or request.mimetype:
            return error_response(415, "unsupported_media_type", "send the body as JSON with "
                                  "Content-Type: application/json")
    return None


def quiet_challenge(response):
    """Keep the Basic challenge for clients that sent Basic credentials; no browser prompt otherwise."""
    if response.status_code == 401 and "WWW-Authenticate" in response.headers:
        authorization = request.headers.get("Authorization", "")
        if not authorization[:6].lower() == "basic ":
            response.headers["WWW-Authenticate"] = QUIET_CHALLENGE
    return response


bp = Blueprint("api", __name__)
bp.before_request(refuse_browser_forgery)
bp.before_request(api_guard)
bp.after_request(quiet_challenge)

from pagerpal_web.api import (  # noqa: E402,F401  (routes register on import)
    alert_sources,
    audit,
    escalation_policies,
    heartbeats,
    incidents,
    maintenance,
    notification_rules,
    notifications,
    oncall,
    openapi,
    schedules,
    system,
    teams,
    trace,
    users,
)
