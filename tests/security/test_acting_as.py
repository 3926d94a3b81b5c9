"""Acting as another user, and changes to one's own account (review finding 8, and the codebase issue
"who may be named as acting user, self-demotion and self-deactivation differ between UI and API"):
one core rule each, so the UI and the API refuse the same things with the same words."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from pagerpal_core.models import Incident, IncidentEvent, User
from pagerpal_web.extensions import db
from tests.conftest import csrf_token_from
from tests.factories import make_user
from tests.web.conftest import basic
from tests.web.test_ui_pages import build_world, signed_in

# The rules do not depend on the database; the one that does (recording) runs on both below.
pytestmark = pytest.mark.backends("sqlite")

ONLY_ACTORS = "only active responders and admins can be named"


@pytest.fixture
def world(app):
    return build_world(app)


def user_id(app, **filters) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).filter_by(**filters))


def extra_user(app, **kwargs) -> int:
    with app.app_context():
        user = make_user(db.session, **kwargs)
        db.session.commit()
        return user.id


def acknowledge(app, world, surface: str, acting_as) -> tuple[int, str]:
    """Rita Responder acknowledges the incident acting as `acting_as`: (status, what the caller is told)."""
    if surface == "ui":
        client = signed_in(app, world.responder_email)
        page = f"/incidents/{world.incident_id}"
        token = csrf_token_from(client.get(page).get_data(as_text=True))
        response = client.post(f"{page}/acknowledge", data={"ack-acting_as": acting_as, "csrf_token": token})
        return response.status_code, html.unescape(response.get_data(as_text=True))
    response = app.test_client().post(f"/api/v1/incidents/{world.incident_id}/acknowledge",
                                      json={"acting_as": acting_as}, headers=basic(world.responder_email))
    told = response.json["error"]["fields"]["acting_as"] if response.status_code >= 400 else ""
    return response.status_code, told


def status_and_events(app, incident_id) -> tuple[str, list]:
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        events = db.session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                    .order_by(IncidentEvent.id)).all()
        return incident.status, [(e.kind, e.actor_user_id, e.recorded_by_id) for e in events]


REFUSED = {"ui": {"viewer": 422, "inactive": 422, "missing": 422},
           "api": {"viewer": 403, "inactive": 403, "missing": 404}}


@pytest.mark.parametrize("surface", ["ui", "api"])
@pytest.mark.parametrize("target", ["viewer", "inactive", "missing"])
def test_acting_as_is_refused_the_same_way_on_both_surfaces(app, world, surface, target):
    """A responder could record actions as any active user over the API, viewers and admins included."""
    ids = {"viewer": lambda: user_id(app, email=world.viewer_email),
           "inactive": lambda: extra_user(app, role="responder", name="Ian Inactive", active=False),
           "missing": lambda: 987654}
    named = ids[target]()
    status, told = acknowledge(app, world, surface, named)
    assert status == REFUSED[surface][target]
    expected = {"viewer": f"Vic Viewer is a viewer; {ONLY_ACTORS}",
                "inactive": f"user Ian Inactive is inactive; {ONLY_ACTORS}",
                "missing": "user 987654 not found"}[target]
    assert expected in told
    state, events = status_and_events(app, world.incident_id)
    assert state == "triggered" and "acknowledged" not in [kind for kind, _, _ in events]


@pytest.mark.backends("sqlite", "postgresql")
@pytest.mark.parametrize("surface", ["ui", "api"])
def test_the_real_caller_is_recorded_beside_the_acting_user(app, world, surface):
    """The signed-in caller was stored nowhere: a timeline entry named only the user acted for."""
    rita = user_id(app, email=world.responder_email)
    status, _ = acknowledge(app, world, surface, world.paged_id)       # Pat has no login
    assert status == (303 if surface == "ui" else 200)
    state, events = status_and_events(app, world.incident_id)
    assert state == "acknowledged"
    assert events[-1] == ("acknowledged", world.paged_id, rita)
    # Both show on the timeline, in the UI and over the API.
    admin = signed_in(app, world.admin_email)
    page = admin.get(f"/incidents/{world.incident_id}").get_data(as_text=True)
    assert "Pat Paged (recorded by Rita Responder)" in html.unescape(re.sub(r"<[^>]+>", "", page))
    detail = app.test_client().get(f"/api/v1/incidents/{world.incident_id}", headers=basic(world.admin_email))
    acked = [e for e in detail.json["timeline"] if e["kind"] == "acknowledged"]
    assert acked and acked[0]["actor_user_id"] == world.paged_id and acked[0]["recorded_by_id"] == rita


@pytest.mark.parametrize("surface", ["ui", "api"])
def test_acting_as_an_admin_or_yourself_is_allowed(app, world, surface):
    admin = user_id(app, email=world.admin_email)
    assert acknowledge(app, world, surface, admin)[0] == (303 if surface == "ui" else 200)
    _, events = status_and_events(app, world.incident_id)
    assert events[-1][1] == admin


def change_own_account(app, world, surface: str, change: str) -> tuple[int, str]:
    """Ada Admin demotes or deactivates herself: (status, what she is told)."""
    ada = user_id(app, email=world.admin_email)
    if surface == "ui":
        client = signed_in(app, world.admin_email)
        page = f"/users/{ada}"
        token = csrf_token_from(client.get(page).get_data(as_text=True))
        action, data = {"demote": ("role", {"role": "viewer"}), "deactivate": ("deactivate", {})}[change]
        response = client.post(f"{page}/{action}", data={**data, "csrf_token": token})
        return response.status_code, html.unescape(response.get_data(as_text=True))
    client, auth = app.test_client(), basic(world.admin_email)
    if change == "demote":
        response = client.patch(f"/api/v1/users/{ada}", json={"role": "viewer"}, headers=auth)
    else:
        response = client.post(f"/api/v1/users/{ada}/deactivate", headers=auth)
    return response.status_code, response.json["error"]["message"] if response.status_code >= 400 else ""


@pytest.mark.parametrize("surface", ["ui", "api"])
@pytest.mark.parametrize("change", ["demote", "deactivate"])
def test_nobody_demotes_or_deactivates_themselves_on_either_surface(app, world, surface, change):
    """The API allowed it whenever another admin existed; the UI refused. Now both refuse, alike."""
    other_admin = extra_user(app, role="admin", name="Otto Admin")
    status, told = change_own_account(app, world, surface, change)
    assert status == {"ui": {"demote": 422, "deactivate": 403}, "api": {"demote": 403, "deactivate": 403}}[
        surface][change]
    assert {"demote": "you cannot take the admin role from yourself; ask another admin",
            "deactivate": "you cannot deactivate your own account; ask another admin"}[change] in told
    with app.app_context():
        ada = db.session.scalar(select(User).filter_by(email=world.admin_email))
        assert ada.role == "admin" and ada.active
    # Another admin may do it.
    ada_id = user_id(app, email=world.admin_email)
    with app.app_context():
        otto_email = db.session.get(User, other_admin).email
    assert app.test_client().patch(f"/api/v1/users/{ada_id}", json={"role": "responder"},
                                   headers=basic(otto_email)).status_code == 200
