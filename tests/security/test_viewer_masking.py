"""Viewers see masked phone numbers and email destinations over the API, as in the UI (review finding 11)."""

from __future__ import annotations

import pytest

from pagerpal_core.models import ContactMethod
from pagerpal_core.security import mask_destination
from pagerpal_web.extensions import db
from tests.web.conftest import basic
from tests.web.test_ui_pages import build_world

# Serialization does not depend on the database.
pytestmark = pytest.mark.backends("sqlite")

PHONE = "+14155550123"               # Pat Paged's SMS contact; the incident paged it
EMAIL = "pat.paged@example.test"     # the failed email page to Pat


def strings(value):
    """Every string inside a decoded JSON document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def api_documents(app, world, email) -> dict:
    with app.app_context():
        method_id = db.session.query(ContactMethod.id).filter(ContactMethod.destination == PHONE).scalar()
    paths = ["/api/v1/users", f"/api/v1/users/{world.paged_id}", f"/api/v1/users/{world.paged_id}/contact-methods",
             f"/api/v1/users/{world.paged_id}/contact-methods/{method_id}", "/api/v1/notifications",
             f"/api/v1/notifications/{world.failed_notification_id}", f"/api/v1/incidents/{world.incident_id}"]
    client, documents = app.test_client(), {}
    for path in paths:
        response = client.get(path, headers=basic(email))
        assert response.status_code == 200, path
        documents[path] = list(strings(response.json))
    return documents


def test_viewers_get_masked_destinations_from_every_api_read(app):
    """The viewer role got full phone numbers and emails from the API while the UI masked them."""
    world = build_world(app)
    documents = api_documents(app, world, world.viewer_email)
    for path, texts in documents.items():
        assert not any(PHONE in text or EMAIL in text for text in texts), path
    assert mask_destination(PHONE) in documents[f"/api/v1/users/{world.paged_id}"]
    assert mask_destination(EMAIL) in documents[f"/api/v1/notifications/{world.failed_notification_id}"]


@pytest.mark.parametrize("role", ["admin", "responder"])
def test_admins_and_responders_still_see_them_in_full(app, role):
    world = build_world(app)
    email = world.admin_email if role == "admin" else world.responder_email
    documents = api_documents(app, world, email)
    assert PHONE in documents[f"/api/v1/users/{world.paged_id}/contact-methods"]
    assert EMAIL in documents[f"/api/v1/notifications/{world.failed_notification_id}"]
    assert PHONE in documents[f"/api/v1/incidents/{world.incident_id}"]    # the page sent by SMS
