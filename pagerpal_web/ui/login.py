"""/login (with first-run admin bootstrap) and /logout."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user

from pagerpal_core.errors import DomainError, RateLimited, Unauthorized
from pagerpal_core.services.users import admin_ever_existed, bootstrap_first_admin, has_login_admin
from pagerpal_web.auth import end_browser_session, password_sign_in
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.forms import BootstrapForm, LoginForm


def safe_next(target: str | None) -> str:
    """`target` when it is a local path, else the dashboard (no open redirects).

    Control characters are refused first: CR/LF cannot go into a Location header (and would
    split it), and browsers drop tabs and newlines from URLs, turning "/\t/evil" into "//evil".
    """
    if target and not any(ord(char) < 32 or ord(char) == 127 for char in target):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//") \
                and "\\" not in target:
            return target
    return url_for("ui.mine" if getattr(current_user, "role", "") == "responder" else "ui.dashboard")


@bp.context_processor
def admin_recovery_hint():
    """`no_admin_can_sign_in()` for login.html; a callable, so only that page runs the query."""
    return {"no_admin_can_sign_in": lambda: not has_login_admin(db.session)}


@bp.get("/")
def index():
    return redirect(url_for("ui.dashboard"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in; on a database that never had an admin, create the first one."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    # First-run setup only while no admin was ever created: offering it again once the last
    # admin is gone would hand the install to whoever reaches /login first.
    if not admin_ever_existed(db.session):
        return _bootstrap()
    form = LoginForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            user = password_sign_in(form.email.data, form.password.data)
        except RateLimited as exc:
            flash("Too many failed sign-ins for this account from this address. "
                  f"Try again in {exc.retry_after} seconds.", "error")
            return render_template("login.html", form=form), 429
        except Unauthorized:
            flash("Wrong email or password, or this account cannot sign in.", "error")
            return render_template("login.html", form=form), 401
        login_user(user)  # also starts the server-side session and rotates the CSRF token (auth.py)
        return redirect(safe_next(request.args.get("next")))
    return render_template("login.html", form=form), (400 if request.method == "POST" else 200)


def _bootstrap():
    form = BootstrapForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            user = bootstrap_first_admin(db.session, email=form.email.data, name=form.name.data,
                                         password=form.password.data)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            if admin_ever_existed(db.session):
                flash(exc.message, "error")
                return redirect(url_for("ui.login"))
            for name, problem in exc.fields.items():
                if name in form:
                    form[name].errors = list(form[name].errors) + [problem]
            return render_template("bootstrap.html", form=form), 400
        login_user(user)
        flash("Welcome to PagerPal. Your admin account is ready.", "success")
        return redirect(url_for("ui.dashboard"))
    return render_template("bootstrap.html", form=form), (400 if request.method == "POST" else 200)


@bp.post("/logout")
def logout():
    """Sign out: the session ends on the server too, so a copy of the cookie is worthless."""
    end_browser_session()
    flash("Signed out.", "success")
    return redirect(url_for("ui.login"))
