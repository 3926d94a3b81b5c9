"""Helpers shared by the UI views: template globals, the form-post helper, form error mapping, display filters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import flash, g, make_response, redirect, render_template, request
from flask_login import current_user
from markupsafe import Markup

from pagerpal_core.errors import DomainError
from pagerpal_core.localtime import DEFAULT_FORMAT, UTC_TITLE_FORMAT, show_time
from pagerpal_core.security import mask_destination
from pagerpal_core.services.escalation_policies import list_policies
from pagerpal_core.services.teams import list_teams
from pagerpal_core.services.users import ACTOR_ROLES, list_active_users  # ACTOR_ROLES: who may be named "Acting as"
from pagerpal_core.timeutil import as_utc, utcnow
from pagerpal_web.auth import has_role
from pagerpal_web.config import settings  # noqa: F401 - views import it from here
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.forms import choice_list


@bp.app_context_processor
def ui_globals():
    """`can('admin')` in templates hides buttons the signed-in user may not use."""
    def can(role: str) -> bool:
        return current_user.is_authenticated and has_role(current_user, role)
    return {"can": can, "now_utc": utcnow()}


@bp.app_template_filter("age")
def age_filter(moment: datetime | None, now: datetime | None = None) -> str:
    """A short age such as "4m", "3h 10m" or "2d 5h"."""
    if moment is None:
        return "—"
    seconds = max(0, int(((now or utcnow()) - as_utc(moment)).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes}m"
    if days < 1:
        return f"{hours}h {minutes % 60}m"
    return f"{days}d {hours % 24}h"


def reader_zone() -> str:
    """The zone the signed-in reader sees times in (their profile's), else UTC."""
    if "reader_zone" not in g:
        g.reader_zone = (getattr(current_user, "timezone", None) if current_user and current_user.is_authenticated
                         else None) or "UTC"
    return g.reader_zone


@bp.app_template_filter("utc")
def utc_filter(moment: datetime | None, fmt: str = DEFAULT_FORMAT, zone: str | None = None) -> Markup | str:
    """Every time in the UI goes through here: `moment` on the reader's clock, the UTC time on hover.

    `zone` names another zone where that is the point (a schedule's handoffs). The format is
    written the UTC way; "UTC" in it becomes the shown zone's abbreviation. "—" for none.
    """
    if moment is None:
        return "—"
    shown = show_time(moment, zone or reader_zone(), fmt)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(shown.iso, shown.utc, shown.text)


@bp.app_template_filter("utc_text")
def utc_text_filter(moment: datetime | None, fmt: str = UTC_TITLE_FORMAT) -> str:
    """The plain UTC time, for places markup cannot go (inside an attribute)."""
    return show_time(moment, "UTC", fmt).text if moment is not None else "—"


@bp.app_template_filter("masked")
def masked(destination: str | None) -> str:
    """Template filter: the destination with its middle hidden (see core's mask_destination)."""
    return mask_destination(destination)


def actor_choices() -> list:
    """(id, label) of everyone who may be recorded as acting on an incident."""
    users = list_active_users(db.session, roles=ACTOR_ROLES)
    return choice_list((u.id, f"{u.name}" + ("" if u.can_log_in else " (no login)")) for u in users)


def active_user_choices(blank: str | None = None) -> list:
    """(id, label) of every active user, optionally led by a blank choice."""
    users = list_active_users(db.session)
    choices = [(u.id, f"{u.name} <{u.email}>") for u in users]
    return choice_list(([("", blank)] if blank is not None else []) + choices)


def shown_once(template: str, **values):
    """`template` rendered as a page no cache keeps: the one page that shows a full key, token or secret URL."""
    response = make_response(render_template(template, **values))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def team_choices() -> list:
    """(id, name) of every team by name, led by the "no team" choice."""
    return choice_list([("", "— no team —")] + [(t.id, t.name) for t in list_teams(db.session)])


def policy_choices(blank: str = "— choose —") -> list:
    """(id, name) of every escalation policy by name, led by a blank choice labelled `blank`."""
    return choice_list([("", blank)] + [(p.id, p.name) for p in list_policies(db.session)])


def apply_errors(form, exc: DomainError, aliases: dict | None = None) -> None:
    """Attach a service's per-field errors to `form`'s fields (`aliases` renames service fields).

    Errors for fields the form does not have are flashed, so nothing is lost.
    """
    aliases = aliases or {}
    for name, problem in (exc.fields or {}).items():
        name = aliases.get(name, name)
        if name in form:
            form[name].errors = list(form[name].errors or []) + [problem]
        else:
            flash(f"{exc.message}: {name} {problem}", "error")
    if not exc.fields:
        flash(exc.message, "error")


def form_status(form) -> int:
    """422 when a posted form failed validation (so tests and clients can tell), else 200."""
    return 422 if request.method == "POST" and any(f.errors for f in form) else 200


def error_text(exc: DomainError) -> str:
    """A service refusal as one flash line: its message, then each field's problem."""
    return exc.message + "".join(f"; {name.replace('_', ' ')} {problem}" for name, problem in exc.fields.items())


def form_action(action: Callable, *, then, done=None, form=None, page: Callable | None = None,
                aliases: dict | None = None, failed: str | None = None):
    """The body of every UI POST: validate, run one service call, commit, flash, redirect.

    `form`, when given, is validated first; an invalid form, or a DomainError from `action`,
    re-renders through `page(form)` with the service's field errors next to the fields
    (`aliases` renames service fields to form fields). Without a form a refusal is flashed and
    the browser goes to `failed` (default: `then`). Either way the transaction is rolled back,
    so a refused action writes nothing. On success `done` (text, or a function of the action's
    result) is flashed and `then` (a URL, or a function of the result giving a URL or a whole
    response) answers.
    """
    if form is not None and not form.validate_on_submit():
        return page(form)
    try:
        result = action()
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if form is not None:
            apply_errors(form, exc, aliases)
            return page(form)
        flash(error_text(exc), "error")
        return redirect(failed or then, code=303)
    if done is not None:
        flash(done(result) if callable(done) else done, "success")
    answer = then(result) if callable(then) else then
    return redirect(answer, code=303) if isinstance(answer, str) else answer
