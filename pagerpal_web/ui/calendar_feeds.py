"""Secret calendar feed URLs: the public `/calendar/<token>.ics` and the user page's create/revoke buttons."""

from __future__ import annotations

import math

from flask import Response, abort, current_app, flash, make_response, redirect, render_template, url_for
from flask_login import current_user

from pagerpal_core.services import calendar_feeds as feeds
from pagerpal_core.services import ical
from pagerpal_core.services.users import get_user
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import client_address, has_role, login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import form_action, settings


def _own_or_admin(user_id: int):
    """The user whose feed is being changed: only that user or an admin may (403 otherwise)."""
    user = get_user(db.session, user_id)
    if user.id != current_user.id and not has_role(current_user, "admin"):
        abort(403, "Only the user or an admin can change this calendar feed.")
    return user


def feed_url(token: str) -> str:
    """The full subscription URL for `token`, built from PAGERPAL_BASE_URL."""
    return settings().base_url.rstrip("/") + url_for("ui.calendar_feed", token=token)


@bp.get("/calendar/<token>.ics")
def calendar_feed(token: str):
    """A user's shifts by the secret feed URL (no session). Unknown or revoked token: 404, nothing
    written; more than the per-address limit: 429."""
    limiter = current_app.extensions.setdefault("pagerpal.calendar_feeds", feeds.new_feed_limiter())
    wait = limiter.take(client_address())
    if wait > 0:  # calendar apps read the status and Retry-After, not a page
        return Response("too many calendar feed requests from this address\n", status=429, mimetype="text/plain",
                        headers={"Retry-After": str(math.ceil(wait))})
    user = feeds.calendar_feed_user(db.session, token)
    if user is None:
        abort(404)
    text = ical.user_ical(db.session, user, now=utcnow())
    # no-store: a shared cache must not keep a response fetched by a secret URL.
    return Response(text, mimetype="text/calendar", headers={
        "Content-Disposition": f'inline; filename="user-{user.id}-on-call.ics"', "Cache-Control": "private, no-store",
        "Referrer-Policy": "no-referrer"})


def _shown_once(user, url: str) -> Response:
    response = make_response(render_template("calendar_feed_url.html", user=user, url=url))
    response.headers["Cache-Control"] = "no-store"  # the only time the full URL exists
    return response


@bp.post("/users/<int:user_id>/calendar-feed")
@login_required_role("viewer")
def create_calendar_feed_view(user_id: int):
    """Create (or replace) the user's secret feed URL and show it this once."""
    user = _own_or_admin(user_id)
    return form_action(
        lambda: feeds.issue_calendar_feed_token(db.session, user, now=utcnow()),
        then=lambda issued: _shown_once(user, feed_url(issued.token)),
        failed=url_for("ui.user_detail", user_id=user.id))


@bp.post("/users/<int:user_id>/calendar-feed/revoke")
@login_required_role("viewer")
def revoke_calendar_feed_view(user_id: int):
    """Revoke the user's secret feed URL: calendars subscribed to it stop updating."""
    user = _own_or_admin(user_id)
    revoked = feeds.revoke_calendar_feed_token(db.session, user, now=utcnow())
    db.session.commit()
    flash("Calendar feed URL revoked." if revoked else "There was no calendar feed URL to revoke.",
          "success" if revoked else "info")
    return redirect(url_for("ui.user_detail", user_id=user.id), code=303)


def feed_status(user) -> dict | None:
    """What the user page shows of a feed: its masked URL and when it was made (None: no feed)."""
    feed = feeds.get_calendar_feed(db.session, user)
    if feed is None:
        return None
    return {"masked": f"{feeds.TOKEN_PREFIX}…{feed.token_suffix}", "created_at": feed.created_at}



@bp.app_context_processor
def _calendar_feed_helpers() -> dict:
    # The user page asks for a feed's status without ui/users.py knowing about feeds.
    return {"calendar_feed_of": feed_status}
