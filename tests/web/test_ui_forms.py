"""Server-side UI form tests: incident actions with "Acting as", validation errors next to
fields with typed values kept, redirect after post, one-time keys, configuration writes."""

from __future__ import annotations

import re

import pytest

from pagerpal_core.models import AlertSource, EscalationPolicy, Incident, Notification, User
from pagerpal_core.services.alert_sources import authenticate_source
from pagerpal_web.extensions import db
from tests.conftest import csrf_token_from
from tests.web.test_ui_pages import build_world, signed_in

# Form handling does not depend on the database; the action walk-through runs on both.
pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
def world(app):
    return build_world(app)


def post_form(client, page: str, action: str, data: dict):
    """Post like a browser: take the CSRF token from `page`, then submit to `action`."""
    token = csrf_token_from(client.get(page).get_data(as_text=True))
    return client.post(action, data={**data, "csrf_token": token})


def field_errors(html: str, field_id: str) -> list[str]:
    """The error lines rendered inside the field wrapper of `field_id`."""
    match = re.search(rf'<div class="field has-error">\s*<label for="{re.escape(field_id)}">.*?</div>', html, re.S)
    return re.findall(r'<p class="error">([^<]*)</p>', match.group(0)) if match else []


def incident(app, incident_id) -> Incident:
    with app.app_context():
        found = db.session.get(Incident, incident_id)
        _ = found.events  # load the timeline while the session is open
        db.session.expunge_all()
        return found


def test_acknowledge_acting_as_a_responder_without_login(app, world):
    client = signed_in(app, world.admin_email)
    page = f"/incidents/{world.incident_id}"
    response = post_form(client, page, f"{page}/acknowledge", {"ack-acting_as": world.paged_id})
    assert response.status_code == 303 and response.headers["Location"].endswith(page)
    found = incident(app, world.incident_id)
    assert found.status == "acknowledged" and found.acknowledged_by_id == world.paged_id
    assert found.events[-1].kind == "acknowledged" and found.events[-1].actor_label == "Pat Paged"
    html = client.get(page).get_data(as_text=True)
    assert "Acknowledged (as Pat Paged)." in html
    # Acknowledging again is a conflict, explained, not a crash.
    again = post_form(client, page, f"{page}/acknowledge", {"ack-acting_as": world.paged_id})
    assert again.status_code == 303
    assert "only a triggered incident can be acknowledged" in client.get(page).get_data(as_text=True)


def test_acting_as_defaults_to_the_signed_in_user(app, world):
    html = signed_in(app, world.responder_email).get(f"/incidents/{world.incident_id}").get_data(as_text=True)
    select = re.search(r'<select[^>]*id="ack-acting_as".*?</select>', html, re.S).group(0)
    assert re.search(rf'<option selected value="{world.responder_id}">Rita Responder</option>', select) or \
        re.search(rf'<option value="{world.responder_id}" selected>Rita Responder</option>', select), select
    assert "Pat Paged (no login)" in select


def test_acting_as_must_be_an_active_responder(app, world):
    client = signed_in(app, world.responder_email)
    page = f"/incidents/{world.incident_id}"
    with app.app_context():
        viewer_id = db.session.query(User.id).filter(User.email == world.viewer_email).scalar()
    response = post_form(client, page, f"{page}/acknowledge", {"ack-acting_as": viewer_id})
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True), "ack-acting_as")
    assert incident(app, world.incident_id).status == "triggered"


@pytest.mark.backends("sqlite", "postgresql")
def test_every_incident_action_through_the_forms(app, world):
    client = signed_in(app, world.responder_email)
    page = f"/incidents/{world.incident_id}"
    acting = world.responder_id

    note = post_form(client, page, f"{page}/notes", {"note-acting_as": acting, "note-text": "Looking <b>now</b>"})
    assert note.status_code == 303
    assert "Looking &lt;b&gt;now&lt;/b&gt;" in client.get(page).get_data(as_text=True)

    empty = post_form(client, page, f"{page}/notes", {"note-acting_as": acting, "note-text": ""})
    assert empty.status_code == 422 and field_errors(empty.get_data(as_text=True), "note-text")

    assert post_form(client, page, f"{page}/reassign",
                     {"reassign-acting_as": acting, "reassign-user_id": world.responder_id}).status_code == 303
    assert incident(app, world.incident_id).assignee_id == world.responder_id

    assert post_form(client, page, f"{page}/escalate", {"escalate-acting_as": acting}).status_code == 303
    assert "escalated" in [event.kind for event in incident(app, world.incident_id).events]

    retry = post_form(client, page, f"{page}/notifications/{world.failed_notification_id}/retry",
                      {"retry-acting_as": acting})
    assert retry.status_code == 303
    with app.app_context():
        assert db.session.get(Notification, world.failed_notification_id).status == "pending"

    resolved = post_form(client, page, f"{page}/resolve",
                         {"resolve-acting_as": acting, "resolve-note": "Freed 20 GB"})
    assert resolved.status_code == 303
    found = incident(app, world.incident_id)
    assert found.status == "resolved" and "Freed 20 GB" in found.events[-1].message

    assert post_form(client, page, f"{page}/reopen", {"reopen-acting_as": acting}).status_code == 303
    assert incident(app, world.incident_id).status == "triggered"


def test_create_user_errors_next_to_fields_and_typed_values_kept(app, world):
    client = signed_in(app, world.admin_email)
    response = post_form(client, "/users", "/users", {
        "name": "Nora New", "email": "not-an-email", "role": "responder", "timezone": "Mars/Olympus",
        "channel": "sms", "destination": "12345"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_errors(html, "email") and field_errors(html, "timezone")
    assert 'value="Nora New"' in html and 'value="Mars/Olympus"' in html


def test_create_user_redirects_to_the_new_user(app, world):
    client = signed_in(app, world.admin_email)
    response = post_form(client, "/users", "/users", {
        "name": "Nora New", "email": "nora@example.test", "role": "responder", "timezone": "UTC",
        "channel": "sms", "destination": "+14155550199"})
    assert response.status_code == 303 and re.search(r"/users/\d+$", response.headers["Location"])
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Nora New" in html and "+14155550199" in html
    bad_phone = post_form(client, "/users", "/users", {
        "name": "Bad Phone", "email": "bad@example.test", "role": "responder", "timezone": "UTC",
        "channel": "sms", "destination": "12345"})
    assert bad_phone.status_code == 422
    assert "E.164" in " ".join(field_errors(bad_phone.get_data(as_text=True), "destination"))
    duplicate = post_form(client, "/users", "/users", {
        "name": "Again", "email": "NORA@example.test", "role": "viewer", "timezone": "UTC"})
    assert duplicate.status_code == 422 and field_errors(duplicate.get_data(as_text=True), "email")


def test_deactivate_user_after_confirmation(app, world):
    client = signed_in(app, world.admin_email)
    page = f"/incidents/{world.incident_id}"
    post_form(client, page, f"{page}/reassign",
              {"reassign-acting_as": world.paged_id, "reassign-user_id": world.paged_id})
    confirm = f"/users/{world.paged_id}/deactivate"
    response = post_form(client, confirm, confirm, {})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(User, world.paged_id).active is False
    assert incident(app, world.incident_id).events[-1].kind == "assignee_deactivated"
    # Inactive people are no longer offered under "Acting as".
    assert "Pat Paged (no login)" not in client.get(page).get_data(as_text=True)


def test_duplicate_escalation_level_is_shown_inline(app, world):
    client = signed_in(app, world.admin_email)
    page = f"/escalation-policies/{world.policy_id}"
    response = post_form(client, page, f"{page}/levels", {
        "level-level_number": "1", "level-delay_minutes": "5", "level-target": f"schedule:{world.schedule_id}"})
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True), "level-level_number") == ["already used in this policy"]
    ok = post_form(client, page, f"{page}/levels", {
        "level-level_number": "2", "level-delay_minutes": "5", "level-target": f"user:{world.responder_id}"})
    assert ok.status_code == 303
    with app.app_context():
        assert [lvl.level_number for lvl in db.session.get(EscalationPolicy, world.policy_id).levels] == [1, 2]


def test_overlapping_schedule_entry_is_shown_inline(app, world):
    client = signed_in(app, world.admin_email)
    page = f"/schedules/{world.schedule_id}"
    from datetime import datetime, timedelta
    start = (datetime.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    end = (datetime.now() + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M")
    response = post_form(client, page, f"{page}/entries", {
        "entry-user_id": world.responder_id, "entry-starts_at": start, "entry-ends_at": end})
    assert response.status_code == 422
    assert "overlaps entry" in " ".join(field_errors(response.get_data(as_text=True), "entry-starts_at"))
    override = post_form(client, page, f"{page}/overrides", {
        "override-user_id": world.responder_id, "override-starts_at": start, "override-ends_at": end,
        "override-reason": "cover"})
    assert override.status_code == 303


def test_alert_source_key_is_shown_once_and_regeneration_replaces_it(app, world):
    client = signed_in(app, world.admin_email)
    response = post_form(client, "/alert-sources", "/alert-sources", {"name": "prom", "kind": "alertmanager"})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    key = re.search(r'<code id="full-key" class="secret">(ppk_[^<]+)</code>', html).group(1)
    assert f"X-API-Key: {key}" in html and 'data-copy="#full-key"' in html
    with app.app_context():
        source = db.session.query(AlertSource).filter_by(name="prom").one()
        assert authenticate_source(db.session, key).id == source.id
        source_id = source.id
    assert key not in client.get("/alert-sources").get_data(as_text=True)
    assert key not in client.get(f"/alert-sources/{source_id}").get_data(as_text=True)

    page = f"/alert-sources/{source_id}/regenerate"
    assert "stops working" in client.get(page).get_data(as_text=True)
    regenerated = post_form(client, page, page, {})
    new_key = re.search(r'<code id="full-key" class="secret">(ppk_[^<]+)</code>',
                        regenerated.get_data(as_text=True)).group(1)
    assert new_key != key
    with app.app_context():
        assert authenticate_source(db.session, key) is None
        assert authenticate_source(db.session, new_key).id == source_id

    duplicate = post_form(client, "/alert-sources", "/alert-sources", {"name": "prom", "kind": "generic"})
    assert duplicate.status_code == 422 and field_errors(duplicate.get_data(as_text=True), "name")


def test_send_test_alert_opens_an_incident(app, world):
    client = signed_in(app, world.admin_email)
    page = f"/alert-sources/{world.source_id}"
    response = post_form(client, page, f"{page}/test", {})
    assert response.status_code == 303 and "/incidents/" in response.headers["Location"]
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Test alert from PagerPal (grafana-prod)" in html


def test_team_create_and_member_add(app, world):
    client = signed_in(app, world.admin_email)
    empty = post_form(client, "/teams", "/teams", {"name": ""})
    assert empty.status_code == 422 and field_errors(empty.get_data(as_text=True), "name")
    created = post_form(client, "/teams", "/teams", {"name": "Databases", "description": "DBAs"})
    assert created.status_code == 303
    team_page = created.headers["Location"]
    added = post_form(client, team_page, f"{team_page}/members", {"member-user_id": world.responder_id})
    assert added.status_code == 303
    assert "Rita Responder" in client.get(team_page).get_data(as_text=True)
    twice = post_form(client, team_page, f"{team_page}/members", {"member-user_id": world.responder_id})
    assert twice.status_code == 422 and "already a member" in twice.get_data(as_text=True)


def test_rotation_form_creates_a_rotation(app, world):
    client = signed_in(app, world.admin_email)
    page = f"/schedules/{world.schedule_id}"
    response = post_form(client, page, f"{page}/rotations", {
        "rotation-name": "Weekly", "rotation-shift_length": "1", "rotation-shift_unit": "weeks",
        "rotation-handoff_time": "09:00", "rotation-start_date": "2026-01-05",
        "rotation-participants-0": str(world.responder_id), "rotation-participants-1": str(world.paged_id)})
    assert response.status_code == 303
    html = client.get(page).get_data(as_text=True)
    assert "Weekly" in html and "Every 1 week," in html
    bad = post_form(client, page, f"{page}/rotations", {
        "rotation-shift_length": "1", "rotation-shift_unit": "weeks", "rotation-handoff_time": "25:00",
        "rotation-start_date": "2026-01-05", "rotation-participants-0": str(world.responder_id)})
    assert bad.status_code == 422 and field_errors(bad.get_data(as_text=True), "rotation-handoff_time")


def test_contact_methods_and_role_changes(app, world):
    client = signed_in(app, world.admin_email)
    page = f"/users/{world.responder_id}"
    bad = post_form(client, page, f"{page}/contacts", {"contact-channel": "email", "contact-destination": "nope"})
    assert bad.status_code == 422
    assert field_errors(bad.get_data(as_text=True), "contact-destination") == ["must be an email address"]
    assert 'value="nope"' in bad.get_data(as_text=True)
    ok = post_form(client, page, f"{page}/contacts", {"contact-channel": "email",
                                                      "contact-destination": "rita@example.test"})
    assert ok.status_code == 303
    again = post_form(client, page, f"{page}/contacts", {"contact-channel": "email",
                                                         "contact-destination": "rita@example.test"})
    assert again.status_code == 422 and "already has that contact method" in again.get_data(as_text=True)
    with app.app_context():
        method_id = db.session.get(User, world.responder_id).contact_methods[0].id
    removed = post_form(client, page, f"{page}/contacts/{method_id}/delete", {})
    assert removed.status_code == 303
    with app.app_context():
        assert db.session.get(User, world.responder_id).contact_methods == []

    assert post_form(client, page, f"{page}/role", {"role": "viewer"}).status_code == 303
    with app.app_context():
        assert db.session.get(User, world.responder_id).role == "viewer"


def test_admins_cannot_lock_themselves_out(app, world):
    client = signed_in(app, world.admin_email)
    with app.app_context():
        admin_id = db.session.query(User.id).filter(User.email == world.admin_email).scalar()
    page = f"/users/{admin_id}"
    demote = post_form(client, page, f"{page}/role", {"role": "viewer"})
    assert demote.status_code == 422 and field_errors(demote.get_data(as_text=True), "role")
    deactivate = post_form(client, page, f"{page}/deactivate", {})
    assert deactivate.status_code == 403
    with app.app_context():
        admin = db.session.get(User, admin_id)
        assert admin.role == "admin" and admin.active


def test_rotation_participants_can_be_added_and_removed(app, world):
    client = signed_in(app, world.admin_email)
    page = f"/schedules/{world.schedule_id}"
    post_form(client, page, f"{page}/rotations", {
        "rotation-name": "Follow the sun", "rotation-shift_length": "12", "rotation-shift_unit": "hours",
        "rotation-handoff_time": "08:00", "rotation-start_date": "2026-01-05",
        "rotation-participants-0": str(world.responder_id)})
    from pagerpal_core.models import Rotation
    with app.app_context():
        rotation_id = db.session.query(Rotation.id).scalar()
    added = post_form(client, page, f"{page}/rotations/{rotation_id}/participants", {"user_id": world.paged_id})
    assert added.status_code == 303
    with app.app_context():
        participants = db.session.get(Rotation, rotation_id).participants
        assert [p.user_id for p in participants] == [world.responder_id, world.paged_id]
        first = participants[0].id
    removed = post_form(client, page, f"{page}/rotations/{rotation_id}/participants/{first}/remove", {})
    assert removed.status_code == 303
    with app.app_context():
        assert [p.user_id for p in db.session.get(Rotation, rotation_id).participants] == [world.paged_id]


def test_level_delay_and_number_changes(app, world):
    client = signed_in(app, world.admin_email)
    page = f"/escalation-policies/{world.policy_id}"
    post_form(client, page, f"{page}/levels", {
        "level-level_number": "2", "level-delay_minutes": "5", "level-target": f"user:{world.responder_id}"})
    with app.app_context():
        first, second = (lvl.id for lvl in db.session.get(EscalationPolicy, world.policy_id).levels)
    assert post_form(client, page, f"{page}/levels/{first}", {"level_number": "1", "delay_minutes": "3"}) \
        .status_code == 303
    clash = post_form(client, page, f"{page}/levels/{second}", {"level_number": "1", "delay_minutes": "5"})
    assert clash.status_code == 303
    assert "already used in this policy" in client.get(page).get_data(as_text=True)
    with app.app_context():
        levels = db.session.get(EscalationPolicy, world.policy_id).levels
        assert [(lvl.level_number, lvl.delay_minutes) for lvl in levels] == [(1, 3), (2, 5)]
