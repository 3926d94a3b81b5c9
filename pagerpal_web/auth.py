"""Sessions for the UI (Flask-Login), HTTP Basic auth and roles for the API."""

from __future__ import annotations

import hashlib
import threading
import time
from functools import wraps

from flask import Flask, g, redirect, request, url_for

from pagerpal_core.models import User
from pagerpal_core.services import throttle
from pagerpal_core.services.users import authenticate
from pagerpal_core.timeutil import utcnow
from pagerpal_web.errors import error_response
from pagerpal_web.extensions import db, login_manager

ROLE_RANK = {"viewer": 1, "responder": 2, "admin": 3}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def has_role(user: User | None, role: str) -> bool:
    """True when `user` has `role` or a higher one."""
    return bool(user) and ROLE_RANK.get(user.role, 0) >= ROLE_RANK[role]


def requires_role(role: str):
    """Declare the lowest role allowed to call a view (checked by the API's and UI's guards)."""
    def decorate(view):
        view.min_role = role
        return view
    return decorate


def settings():
    from flask import current_app
    return current_app.config["PAGERPAL"]


def client_key(prefix: str) -> str:
    """Throttle key for the calling client."""
    return f"{prefix}:{request.remote_addr or 'unknown'}"


# --- Basic auth with a short-lived verification cache ---------------------------------

class CredentialCache:
    """Remembers recently verified (email, password) pairs for a few seconds per process.

    Password hashing is slow on purpose; an API client calling several times a second
    should not pay it every time. The key is a SHA-256 of the credentials (never the
    password itself), and a hit is only trusted while the user's `auth_version` — bumped
    on password, role or active changes — is unchanged.
    """

    def __init__(self, ttl_seconds: float = 60.0, max_entries: int = 1024):
        self.ttl, self.max_entries = ttl_seconds, max_entries
        self._entries: dict[str, tuple[int, int, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(email: str, password: str) -> str:
        return hashlib.sha256(f"{email.lower()}\0{password}".encode()).hexdigest()

    def get(self, key: str) -> tuple[int, int] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[2] < time.monotonic():
                self._entries.pop(key, None)
                return None
            return entry[0], entry[1]

    def put(self, key: str, user: User) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (user.id, user.auth_version, time.monotonic() + self.ttl)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


credential_cache = CredentialCache()


def basic_auth_user() -> tuple[User | None, object]:
    """(user, None) for valid Basic credentials, else (None, an error response)."""
    auth = request.authorization
    challenge = {"WWW-Authenticate": 'Basic realm="PagerPal API", charset="UTF-8"'}
    if auth is None or auth.type != "basic" or not auth.username:
        return None, error_response(401, "unauthorized", "HTTP Basic auth with an account's email and "
                                    "password is required", headers=challenge)
    key = CredentialCache.key(auth.username, auth.password or "")
    cached = credential_cache.get(key)
    if cached:
        user = db.session.get(User, cached[0])
        if user is not None and user.auth_version == cached[1] and user.can_log_in:
            return user, None
    now = utcnow()
    wait = throttle.blocked_for(db.session, client_key("api"), now=now)
    if wait:
        return None, error_response(429, "too_many_failures", "too many failed sign-ins; try again later",
                                    headers={"Retry-After": str(wait)})
    user = authenticate(db.session, auth.username, auth.password or "")
    if user is None:
        throttle.record_failure(db.session, client_key("api"), now=now,
                                max_failures=settings().login_max_failures,
                                block_seconds=settings().login_block_seconds)
        db.session.commit()
        return None, error_response(401, "unauthorized", "invalid credentials, or the account is "
                                    "inactive or cannot log in", headers=challenge)
    credential_cache.put(key, user)
    return user, None


def api_guard():
    """Before every API request: authenticate, then check the view's role."""
    from flask import current_app

    if request.endpoint is None:
        return None  # 404/405: let the error handler answer
    user, failure = basic_auth_user()
    if failure is not None:
        return failure
    g.api_user = user
    view = current_app.view_functions.get(request.endpoint)
    needed = getattr(view, "min_role", None) or ("viewer" if request.method in SAFE_METHODS else "admin")
    if not has_role(user, needed):
        return error_response(403, "forbidden", f"this action needs the {needed} role; "
                              f"your account is {user.role}")
    return None


def login_required_role(role: str = "viewer"):
    """UI decorator: signed-in user with at least `role`, else /login or 403."""
    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            from flask import abort
            from flask_login import current_user

            if not current_user.is_authenticated:
                return redirect(url_for("ui.login", next=request.full_path.rstrip("?")))
            if not has_role(current_user, role):
                abort(403, f"This needs the {role} role.")
            return view(*args, **kwargs)
        wrapped.min_role = role
        return wrapped
    return decorate


def init_app(app: Flask) -> None:
    login_manager.login_view = "ui.login"

    @login_manager.user_loader
    def load_user(session_id: str):
        try:
            user_id, version = (int(part) for part in session_id.split(":", 1))
        except (ValueError, AttributeError):
            return None
        user = db.session.get(User, user_id)
        if user is None or user.auth_version != version or not user.can_log_in:
            return None
        return user
