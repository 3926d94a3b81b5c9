"""/api/v1/users: accounts and responder identities, their contact methods and shifts.

There is no DELETE: people with history are deactivated (`POST .../deactivate`), which
drops them out of paging at once and keeps every timeline entry that names them.
"""

from functools import partial

from flask import jsonify

from pagerpal_core.models import ContactMethod, User
from pagerpal_core.security import destination_for
from pagerpal_core.services.oncall import user_shifts_between
from pagerpal_core.services.users import (
    add_contact_method,
    create_user,
    deactivate_user,
    ensure_login_admin,
    get_contact_method,
    get_user,
    reactivate_user,
    refuse_self_lockout,
    remove_contact_method,
    update_user,
)
from pagerpal_core.services.users import list_users as fetch_users
from pagerpal_core.services.users import update_contact_method as change_contact_method
from pagerpal_core.services.validation import UNSET
from pagerpal_core.timeutil import utcnow
from pagerpal_web.api import bp
from pagerpal_web.api.common import (
    body_fields,
    check_types,
    created,
    current_api_user,
    no_content,
    paginate,
    query_window,
    ts,
)
from pagerpal_web.api.oncall import serialize_shift
from pagerpal_web.extensions import db

USER_FIELDS = {"email", "name", "role", "password", "timezone", "contact_methods"}
UPDATE_FIELDS = {"email", "name", "role", "password", "timezone"}
CONTACT_FIELDS = {"channel", "destination", "enabled", "webhook_format"}


def serialize_contact(method: ContactMethod) -> dict:
    """A contact method; its destination masked for viewers (core's destination_for decides)."""
    return {"id": method.id, "channel": method.channel,
            "destination": destination_for(current_api_user().role, method.destination),
            "enabled": method.enabled, "created_at": ts(method.created_at),
            "webhook_format": method.webhook_format}


def serialize_user(user: User) -> dict:
    """A user as JSON with contact methods (destinations masked for viewers)."""
    return {
        "id": user.id, "email": user.email, "name": user.name, "role": user.role,
        "active": user.active, "can_log_in": user.can_log_in, "timezone": user.timezone,
        "contact_methods": [serialize_contact(m) for m in user.contact_methods],
        "created_at": ts(user.created_at), "deactivated_at": ts(user.deactivated_at),
    }


def user_ref(user: User | None) -> dict | None:
    """The short form of a user embedded in other resources."""
    if user is None:
        return None
    return {"id": user.id, "name": user.name, "email": user.email, "active": user.active}


@bp.get("/users")
def list_users():
    """Users by id, paginated."""
    return jsonify(paginate(partial(fetch_users, db.session), "api.list_users", serialize_user))


@bp.get("/users/<int:user_id>")
def read_user(user_id: int):
    """One user with contact methods."""
    return jsonify(serialize_user(get_user(db.session, user_id)))


@bp.post("/users")
def create_user_view():
    """Create a user; without `password` it is a responder identity that cannot log in."""
    data = body_fields(USER_FIELDS, needed=("email",))
    check_types(data, email="string", name="string?", role="string?", password="string?",
                timezone="string?", contact_methods="array?")
    user = create_user(db.session, email=data.get("email"), name=data.get("name"),
                       role=data.get("role") or "responder", password=data.get("password"),
                       timezone=data.get("timezone") or "UTC",
                       contact_methods=data.get("contact_methods"))
    db.session.commit()
    return created(serialize_user(user), "api.read_user", user_id=user.id)


@bp.patch("/users/<int:user_id>")
def update_user_view(user_id: int):
    """Change name, email, time zone, role or password (null removes the login); returns the user.

    Nobody takes the admin role from themselves (403): another admin must.
    """
    user = get_user(db.session, user_id)
    data = body_fields(UPDATE_FIELDS)
    check_types(data, email="string", name="string", role="string", password="string?", timezone="string")
    refuse_self_lockout(current_api_user(), user, role=data.get("role", UNSET))
    update_user(db.session, user, **data)
    db.session.commit()
    return jsonify(serialize_user(user))


@bp.post("/users/<int:user_id>/deactivate")
def deactivate_user_view(user_id: int):
    """Deactivate: no login, no paging; history and timeline entries stay (not your own account: 403)."""
    user = get_user(db.session, user_id)
    refuse_self_lockout(current_api_user(), user, deactivate=True)
    user = deactivate_user(db.session, user, actor=current_api_user(), now=utcnow())
    ensure_login_admin(db.session)
    db.session.commit()
    return jsonify(serialize_user(user))


@bp.post("/users/<int:user_id>/reactivate")
def reactivate_user_view(user_id: int):
    """Make a deactivated user active again (they must be put back on schedules by hand)."""
    user = reactivate_user(db.session, get_user(db.session, user_id))
    db.session.commit()
    return jsonify(serialize_user(user))


@bp.get("/users/<int:user_id>/shifts")
def user_shifts(user_id: int):
    """The user's on-call shifts across every schedule in [from, to)."""
    user = get_user(db.session, user_id)
    start, end = query_window(required=True)
    return jsonify(items=[serialize_shift(s) for s in user_shifts_between(db.session, user, start, end)])


# --- contact methods -----------------------------------------------------------------

@bp.get("/users/<int:user_id>/contact-methods")
def list_contact_methods(user_id: int):
    """A user's contact methods."""
    user = get_user(db.session, user_id)
    return jsonify(items=[serialize_contact(m) for m in user.contact_methods])


@bp.post("/users/<int:user_id>/contact-methods")
def create_contact_method(user_id: int):
    """Add a way to reach the user (sms/whatsapp as E.164, or email)."""
    user = get_user(db.session, user_id)
    data = body_fields(CONTACT_FIELDS, needed=("channel", "destination"))
    check_types(data, channel="string", destination="string", enabled="boolean")
    method = add_contact_method(db.session, user, **data)
    db.session.commit()
    return created(serialize_contact(method), "api.read_contact_method", user_id=user.id, method_id=method.id)


@bp.get("/users/<int:user_id>/contact-methods/<int:method_id>")
def read_contact_method(user_id: int, method_id: int):
    """One contact method."""
    return jsonify(serialize_contact(get_contact_method(db.session, get_user(db.session, user_id), method_id)))


@bp.patch("/users/<int:user_id>/contact-methods/<int:method_id>")
def update_contact_method(user_id: int, method_id: int):
    """Change a contact method's destination or switch it on or off."""
    method = get_contact_method(db.session, get_user(db.session, user_id), method_id)
    data = body_fields(CONTACT_FIELDS)
    check_types(data, channel="string", destination="string", enabled="boolean")
    change_contact_method(db.session, method, **data)
    db.session.commit()
    return jsonify(serialize_contact(method))


@bp.delete("/users/<int:user_id>/contact-methods/<int:method_id>")
def delete_contact_method(user_id: int, method_id: int):
    """Remove a contact method (past notifications keep their destination)."""
    remove_contact_method(db.session, get_contact_method(db.session, get_user(db.session, user_id), method_id))
    db.session.commit()
    return no_content()
