"""/api/v1/users/<id>/notification-rules: a user's personal notification rules — read, replace.

Order of checks: account (401), role (the API guard: viewer at least), the user exists (404),
the caller is an admin or that user (403), the body is a JSON object with a `rules` list whose
entries name one of this user's contact methods once each with a delay of 0–1440 minutes
(422 naming every bad field). A refused request writes nothing.
"""

from __future__ import annotations

from flask import jsonify

from pagerpal_core.errors import Forbidden
from pagerpal_core.services.notification_rules import can_edit_rules, rules_as_dicts, set_notification_rules
from pagerpal_core.services.users import get_user
from pagerpal_core.timeutil import utcnow
from pagerpal_web.api import bp
from pagerpal_web.api.common import current_api_user, json_body
from pagerpal_web.auth import requires_role
from pagerpal_web.extensions import db


def _user_for_caller(user_id: int):
    user = get_user(db.session, user_id)
    if not can_edit_rules(current_api_user(), user):
        raise Forbidden("only an admin or the user themselves can see or change notification rules")
    return user


@bp.get("/users/<int:user_id>/notification-rules")
def read_notification_rules(user_id: int):
    """The user's rules and what paging them does now (`effective`; the default when `rules` is empty)."""
    return jsonify(rules_as_dicts(db.session, _user_for_caller(user_id)))


@bp.put("/users/<int:user_id>/notification-rules")
@requires_role("viewer")
def replace_notification_rules(user_id: int):
    """Replace the user's rules, in order; `{"rules": []}` returns them to the default."""
    user = _user_for_caller(user_id)
    data = json_body()
    set_notification_rules(db.session, user, data.get("rules"), actor=current_api_user(), now=utcnow())
    db.session.commit()
    return jsonify(rules_as_dicts(db.session, user))
