"""Browser-facing protections: security headers on every response, and an Origin check
on state-changing UI requests (defence in depth beside CSRF tokens)."""

from __future__ import annotations

from flask import Flask, abort, current_app, request

from pagerpal_web.config import settings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def origin_allowed(origin: str) -> bool:
    """Same origin as this request, or listed in ALLOWED_ORIGINS."""
    if origin.rstrip("/") == request.host_url.rstrip("/"):
        return True
    return origin.rstrip("/") in settings().allowed_origins


def init_app(app: Flask) -> None:
    @app.before_request
    def check_origin():
        # API clients and webhooks authenticate per request (Basic auth, source keys) and
        # carry no cookies worth forging; the UI's cookie-authenticated posts are checked.
        if request.method in SAFE_METHODS or request.path.startswith("/api/"):
            return None
        origin = request.headers.get("Origin")
        if origin and origin != "null" and not origin_allowed(origin):
            abort(403, "Cross-origin form posts are not accepted.")
        return None

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if current_app.config.get("SESSION_COOKIE_SECURE"):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
