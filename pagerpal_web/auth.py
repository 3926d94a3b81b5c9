"""Sessions for the UI (Flask-Login), HTTP Basic auth and roles for the API."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta
from functools import wraps

from flask import Flask, g, redirect, request, session, url_for
from flask_login import current_user, logout_user, user_logged_in

from pagerpal_core.errors import RateLimited, Unauthorized
from pagerpal_core.models import User
from pagerpal_core.services import sessions, signin
from pagerpal_core.services.timeline import record_as_caller
from pagerpal_core.timeutil import utcnow
from pagerpal_web.config import settings
from pagerpal_web.errors import error_response, is_api_request
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


def client_address() -> str:
    """The calling client's address (from X-Forwarded-For only behind TRUSTED_PROXIES)."""
    return request.remote_addr or "unknown"


def password_sign_in(email, password, *, audit_success: bool = True) -> User:
    """Check an email and password for this client, throttled (the UI form and Basic auth both use it).

    Raises RateLimited (wait first) or Unauthorized (wrong); commits the throttle's counters.
    Failures are always in the audit log; successes unless `audit_success` is False.
    """
    return signin.sign_in(db.session, client_address(), email, password,
                          policy=signin.SigninPolicy.from_settings(settings()), now=utcnow(),
                          audit_success=audit_success)


# --- browser sessions, also checked on the server ---------------------------------------

# Key in the signed cookie session holding the server-side session's token.
SESSION_TOKEN_KEY = "_pp_session"
CSRF_SESSION_KEY = "csrf_token"  # Flask-WTF's default WTF_CSRF_FIELD_NAME


def _idle() -> timedelta:
    return timedelta(minutes=settings().session_idle_minutes)


def _start_server_session(sender, user, **extra) -> None:
    """On every login_user() (sign-in and first-run bootstrap alike): a new server session, a new CSRF token.

    A CSRF token the visitor held before signing in — possibly planted — must not carry over,
    and the session token is what sign-out revokes.
    """
    session.pop(CSRF_SESSION_KEY, None)
    g.pop(CSRF_SESSION_KEY, None)  # Flask-WTF caches the request's token on g
    session[SESSION_TOKEN_KEY] = sessions.start_session(db.session, user, now=utcnow(), idle=_idle())
    db.session.commit()


def end_browser_session() -> None:
    """Sign out: revoke the session on the server (a copied cookie stops working), then the cookie."""
    sessions.end_session(db.session, session.pop(SESSION_TOKEN_KEY, None))
    db.session.commit()
    logout_user()
    session.pop(CSRF_SESSION_KEY, None)


def _resolve_browser_session():
    """Before every non-API request: check the browser session first and keep its last-seen time.

    Done before the view so the last-seen write is committed on its own, never with (or
    instead of) anything the view does; also names the signed-in user as the caller that
    timeline events are recorded by.
    """
    if is_api_request() or request.endpoint == "static" or "_user_id" not in session:
        return None
    if current_user.is_authenticated:
        record_as_caller(db.session, current_user._get_current_object())
    else:  # signed out elsewhere, idle too long, or the password changed: drop the dead cookie state
        for key in ("_user_id", "_fresh", "_id", SESSION_TOKEN_KEY):
            session.pop(key, None)
    db.session.commit()  # nothing but the last-seen time can be pending this early
    return None


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
    try:
        # Basic auth is checked per call, not a sign-in: only its failures go to the audit log.
        user = password_sign_in(auth.username, auth.password or "", audit_success=False)
    except RateLimited as exc:
        return None, error_response(429, "too_many_failures", "too many failed sign-ins for this account "
                                    "from this address; try again later",
                                    headers={"Retry-After": str(exc.retry_after)})
    except Unauthorized:
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
    record_as_caller(db.session, user)
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
    # A module-level receiver, connected once whatever the number of apps (blinker keeps it weakly).
    user_logged_in.connect(_start_server_session)
    app.before_request(_resolve_browser_session)

    @login_manager.user_loader
    def load_user(session_id: str):
        """The session's user while its auth version and its server-side session both hold."""
        try:
            user_id, version = (int(part) for part in session_id.split(":", 1))
        except (ValueError, AttributeError):
            return None
        user = db.session.get(User, user_id)
        if user is None or user.auth_version != version or not user.can_log_in:
            return None
        if not sessions.check_session(db.session, user.id, session.get(SESSION_TOKEN_KEY), now=utcnow(),
                                      idle=_idle()):
            return None
        return user
