"""/login (with first-run admin bootstrap) and /logout."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from pagerpal_core.errors import DomainError
from pagerpal_core.services import throttle
from pagerpal_core.services.users import admin_ever_existed, authenticate, bootstrap_first_admin, has_login_admin
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import client_key, settings
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
    return url_for("ui.dashboard")


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
        now = utcnow()
        key = client_key("login")
        wait = throttle.blocked_for(db.session, key, now=now)
        if wait:
            flash(f"Too many failed sign-ins from this address. Try again in {wait} seconds.", "error")
            return render_template("login.html", form=form), 429
        user = authenticate(db.session, form.email.data, form.password.data)
        if user is None:
            throttle.record_failure(db.session, key, now=now, max_failures=settings().login_max_failures,
                                    block_seconds=settings().login_block_seconds)
            db.session.commit()
            flash("Wrong email or password, or this account cannot sign in.", "error")
            return render_template("login.html", form=form), 401
        throttle.record_success(db.session, key)
        db.session.commit()
        login_user(user)
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
    logout_user()
    flash("Signed out.", "success")
    return redirect(url_for("ui.login"))
