"""Signed action links: `GET /a/<token>` shows the page's incident, `POST /a/<token>` acts on it.

No sign-in: the link itself is the credential (services/action_links.py), acting as the
user it paged.

GET, in order: address over its unknown-link budget → 429 page; unknown token (or one
minted under another SECRET_KEY) → the miss is counted against the address, 404 page;
expired or its user deactivated → 410 page; else the incident with its buttons. GET never
changes the incident, the link or anything else about the page: SMS apps, mail scanners and
chat unfurlers fetch links on their own.

POST, in order: the same link checks (429/404/410); the form token, which is bound to this
link token (an HMAC under SECRET_KEY-derived key), must match → 400 otherwise, nothing
written; the form's incident must be the link's → 404; then one core call
(`perform_link_action`), commit, and the result page. Flask-WTF's session CSRF is exempted
for this view only, in favour of that bound token (the browser may have no session at all).
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template, request

from pagerpal_core.errors import Conflict, NotFound, RateLimited
from pagerpal_core.models.action_links import LINK_ACTIONS
from pagerpal_core.services.action_links import (
    ActionOutcome,
    LinkGone,
    LinkSigning,
    check_address,
    configure_links,
    load_link,
    perform_link_action,
    record_miss,
)
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import client_address
from pagerpal_web.config import settings
from pagerpal_web.extensions import csrf, db

bp = Blueprint("actions", __name__)

BUTTONS = (("ack", "Acknowledge"), ("resolve", "Resolve"), ("escalate", "Escalate"))


def _signing() -> LinkSigning:
    return LinkSigning.from_settings(settings())


def _private(response, status: int):
    """The page must not be cached, indexed, or leak its URL (the token) as a referrer."""
    response = current_app.make_response((response, status))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _refusal(status: int, title: str, message: str):
    return _private(render_template("action_link.html", refusal={"status": status, "title": title,
                                                                 "message": message}), status)


def _open_link(token: str, now):
    """The working link, or the refusal page to answer with (a miss is counted and committed)."""
    address = client_address()
    try:
        check_address(db.session, address, now=now)
        return load_link(db.session, token, signing=_signing(), now=now), None
    except RateLimited as exc:
        db.session.rollback()
        page = _refusal(429, "Too many unknown links", exc.message)
        page.headers["Retry-After"] = str(exc.retry_after)
        return None, page
    except NotFound:
        record_miss(db.session, address, now=now)
        db.session.commit()
        return None, _refusal(404, "Unknown link", "This link is unknown or no longer valid (links stop "
                                                   "working when the server's secret key changes).")
    except LinkGone as exc:
        db.session.rollback()
        return None, _refusal(410, "Link no longer works", exc.message)


def _page(token: str, link, *, status: int = 200, outcome: ActionOutcome | None = None, error: str | None = None):
    incident = link.incident
    # Only the buttons that can do something now; a resolved incident has none.
    buttons = [(action, label) for action, label in BUTTONS
               if incident.status != "resolved" and not (action == "ack" and incident.status != "triggered")]
    selected = request.values.get("do") if request.values.get("do") in LINK_ACTIONS else None
    holder = incident.assignee
    return _private(render_template(
        "action_link.html", token=token, link=link, incident=incident, holder=holder, buttons=buttons,
        selected=selected, outcome=outcome, error=error, form_token=_signing().form_token(token),
        now=utcnow()), status)


@bp.get("/a/<token>")
def show(token: str):
    """The incident behind a page's link, with Acknowledge / Resolve / Escalate. Changes nothing."""
    link, refusal = _open_link(token, utcnow())
    if refusal is not None:
        return refusal
    response = _page(token, link)
    db.session.rollback()  # end the read-only transaction: nothing was written
    return response


@bp.post("/a/<token>")
def act(token: str):
    """Perform the chosen action as the paged user; a repeat says "already …" and writes nothing."""
    now = utcnow()
    link, refusal = _open_link(token, now)
    if refusal is not None:
        return refusal
    if not _signing().form_token_ok(token, request.form.get("form_token")):
        db.session.rollback()
        return _refusal(400, "Form expired or forged", "The form could not be verified. Open the link "
                                                       "from your page again and retry.")
    incident_id = request.form.get("incident", "")
    if not incident_id.isdigit() or int(incident_id) != link.incident_id:
        db.session.rollback()
        return _refusal(404, "Wrong incident", "This link belongs to a different incident.")
    try:
        outcome = perform_link_action(db.session, token, request.form.get("action", ""), signing=_signing(),
                                      now=now, base_url=settings().base_url, incident_id=int(incident_id))
    except Conflict as exc:
        db.session.rollback()
        return _page(token, link, status=409, error=exc.message)
    db.session.commit()
    return _page(token, link, outcome=outcome)


def init_app(app: Flask) -> None:
    """Mount the link pages and give paging the link key of this app's database engine."""
    app.register_blueprint(bp)
    # The confirm form carries a token bound to the link instead of the session CSRF token.
    csrf.exempt(act)
    with app.app_context():
        configure_links(db.engine, settings(app))
