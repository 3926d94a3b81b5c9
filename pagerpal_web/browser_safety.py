"""Browser-facing protections: security headers on every response, and an Origin check
on state-changing UI requests (defence in depth beside CSRF tokens)."""

from __future__ import annotations

from flask import Flask, abort, request

from pagerpal_web.config import settings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Every response gets these unless it set its own; HSTS too when cookies are HTTPS-only.
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
WITH_HSTS = (*SECURITY_HEADERS, ("Strict-Transport-Security", "max-age=31536000"))


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
        # One pass over the response's headers (a Headers.setdefault each rescanned them all).
        headers = response.headers
        present = {name.lower() for name, _ in headers.items()}
        for name, value in WITH_HSTS if app.config.get("SESSION_COOKIE_SECURE") else SECURITY_HEADERS:
            if name.lower() not in present:
                headers.add(name, value)
        return response
