"""/api/v1/users: list, read and create accounts and responder identities."""

from flask import jsonify, url_for
from sqlalchemy import select

from pagerpal_core.errors import Invalid
from pagerpal_core.models import User
from pagerpal_core.services.users import create_user, get_user
from pagerpal_web.api import bp
from pagerpal_web.api.common import json_body, page_args, page_response, ts
from pagerpal_web.auth import requires_role
from pagerpal_web.extensions import db


def serialize_user(user: User) -> dict:
    return {
        "id": user.id, "email": user.email, "name": user.name, "role": user.role,
        "active": user.active, "can_log_in": user.can_log_in, "timezone": user.timezone,
        "contact_methods": [{"id": m.id, "channel": m.channel, "destination": m.destination,
                             "enabled": m.enabled} for m in user.contact_methods],
        "created_at": ts(user.created_at), "deactivated_at": ts(user.deactivated_at),
    }


@bp.get("/users")
def list_users():
    """Users by id, paginated."""
    limit, after = page_args()
    query = select(User).order_by(User.id).limit(limit + 1)
    if after is not None:
        query = query.where(User.id > after)
    return jsonify(page_response(list(db.session.scalars(query)), limit, "api.list_users", serialize_user))


@bp.get("/users/<int:user_id>")
def read_user(user_id: int):
    return jsonify(serialize_user(get_user(db.session, user_id)))


@bp.post("/users")
@requires_role("admin")
def create_user_view():
    """Create a user; without `password` it is a responder identity that cannot log in."""
    data = json_body()
    allowed = {"email", "name", "role", "password", "timezone", "contact_methods"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise Invalid("unknown fields", fields={name: "unknown field" for name in unknown})
    for key in ("email", "name", "role", "password", "timezone"):
        if key in data and data[key] is not None and not isinstance(data[key], str):
                raise Invalid("invalid user", fields={key: "must be a string"})
    if "contact_methods" in data and not isinstance(data["contact_methods"], list):
        raise Invalid("invalid user", fields={"contact_methods": "must be a list"})
    user = create_user(db.session, email=data.get("email"), name=data.get("name"),
                       role=data.get("role") or "responder", password=data.get("password"),
                       timezone=data.get("timezone") or "UTC",
                       contact_methods=data.get("contact_methods"))
    db.session.commit()
    response = jsonify(serialize_user(user))
    response.status_code = 201
    response.headers["Location"] = url_for("api.read_user", user_id=user.id)
    return response
