"""Triage in the UI through the test client: one-tap acknowledge, multi-select, /mine, snooze,
the incident page's order (actions before details) and its paging states."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from pagerpal_core.models import AlertSource, Incident, Notification
from pagerpal_core.services import incidents as incident_service
from pagerpal_core.services.escalation import run_escalation_step
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from tests.conftest import csrf_token_from
from tests.core.routing_setup import open_incident
from tests.web.test_ui_pages import BASE_URL, build_world, signed_in

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
def world(app):
    return build_world(app)


def add_incident(app, world, external_id: str, **after) -> int:
    """A triggered incident from the world's source (paging Pat via the schedule)."""
    with app.app_context():
        source = db.session.get(AlertSource, world.source_id)
        incident = open_incident(db.session, source, now=utcnow(), external_id=external_id,
                                 title=f"Alert {external_id}")
        db.session.commit()
        return incident.id


def incident(app, incident_id: int) -> Incident:
    with app.app_context():
        row = db.session.get(Incident, incident_id)
        db.session.expunge(row)
        return row


def form_fields(html: str, form_id: str) -> dict:
    """The hidden inputs of the form with `form_id`."""
    match = re.search(rf'<form[^>]*id="{form_id}"[^>]*>(.*?)</form>', html, re.S)
    assert match, f"no form {form_id}"
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', match.group(1)))


def test_one_tap_acknowledge_from_the_dashboard(app, world):
    client = signed_in(app, world.responder_email)
    html = client.get("/dashboard").get_data(as_text=True)
    fields = form_fields(html, f"quick-ack-{world.incident_id}")
    assert fields["action"] == "acknowledge" and fields["incident_ids"] == str(world.incident_id)
    response = client.post("/incidents/actions", data=fields)
    assert response.status_code == 303 and response.headers["Location"].startswith("/dashboard")
    after = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Acknowledged #{world.incident_id}." in after
    assert f"quick-ack-{world.incident_id}" not in after
    acked = incident(app, world.incident_id)
    assert (acked.status, acked.acknowledged_by_id, acked.assignee_id) == (
        "acknowledged", world.responder_id, world.responder_id)
    # The same tap again changes nothing and says why.
    again = client.post("/incidents/actions", data=fields, follow_redirects=True).get_data(as_text=True)
    assert f"Skipped #{world.incident_id} (already acknowledged)" in again


def test_viewers_get_no_quick_actions_and_cannot_post_them(app, world):
    client = signed_in(app, world.viewer_email)
    for path in ("/dashboard", "/incidents", "/mine"):
        html = client.get(path).get_data(as_text=True)
        assert "quick-ack-" not in html and 'id="bulk-form"' not in html
    token = csrf_token_from(client.get("/dashboard").get_data(as_text=True))
    response = client.post("/incidents/actions", data={"csrf_token": token, "action": "acknowledge",
                                                       "incident_ids": str(world.incident_id)})
    assert response.status_code == 403
    assert incident(app, world.incident_id).status == "triggered"


def test_quick_actions_need_the_csrf_token(app, world):
    client = signed_in(app, world.responder_email)
    response = client.post("/incidents/actions", data={"action": "acknowledge", "incident_ids": str(world.incident_id)})
    assert response.status_code == 400
    assert incident(app, world.incident_id).status == "triggered"


def test_multi_select_acknowledge_then_resolve(app, world):
    a = world.incident_id
    b = add_incident(app, world, "b")
    c = add_incident(app, world, "c")
    client = signed_in(app, world.responder_email)
    html = client.get("/incidents").get_data(as_text=True)
    assert 'id="bulk-form"' in html
    for incident_id in (a, b, c):
        assert f'name="incident_ids" value="{incident_id}" form="bulk-form"' in html
    token = csrf_token_from(html)
    client.post("/incidents/actions", data={"csrf_token": token, "action": "acknowledge", "incident_ids": str(c)})

    response = client.post("/incidents/actions", data={"csrf_token": token, "action": "acknowledge",
                                                       "incident_ids": [str(a), str(b), str(c)],
                                                       "next": "/incidents?status=all"})
    assert response.status_code == 303 and response.headers["Location"] == "/incidents?status=all"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Acknowledged #{a}, #{b}." in page and f"Skipped #{c} (already acknowledged)." in page
    assert [incident(app, i).status for i in (a, b, c)] == ["acknowledged"] * 3

    client.post("/incidents/actions", data={"csrf_token": token, "action": "resolve",
                                            "incident_ids": [str(a), str(c)]})
    assert [incident(app, i).status for i in (a, b, c)] == ["resolved", "acknowledged", "resolved"]


@pytest.mark.parametrize("data", [
    {"action": "delete", "incident_ids": "1"},
    {"action": "acknowledge"},
    {"action": "acknowledge", "incident_ids": "x"},
    {"action": "acknowledge", "incident_ids": "1\x00"},
    {"incident_ids": "1"},
], ids=["unknown action", "no incidents", "not an id", "nul", "no action"])
def test_bad_bulk_input_changes_nothing(app, world, data):
    client = signed_in(app, world.responder_email)
    token = csrf_token_from(client.get("/incidents").get_data(as_text=True))
    data = {k: (str(world.incident_id) if v == "1" else v) for k, v in data.items()}
    response = client.post("/incidents/actions", data={"csrf_token": token, **data})
    assert response.status_code == 303
    assert incident(app, world.incident_id).status == "triggered"
    assert "error" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_mine_lists_what_is_assigned_to_me_or_paging_me(app, world):
    mine = add_incident(app, world, "mine")
    paging_me = add_incident(app, world, "paging-me")
    not_mine = world.incident_id
    with app.app_context():
        incident_service.reassign_incident(db.session, db.session.get(Incident, mine), world.responder_id,
                                           actor="test", now=utcnow(), base_url=BASE_URL)
        db.session.add(Notification(incident_id=paging_me, user_id=world.responder_id, channel="sms",
                                    destination="+14155550111", status="sent", attempts=1, dedup_key="t-1"))
        db.session.commit()
    client = signed_in(app, world.responder_email)
    html = client.get("/mine").get_data(as_text=True)
    shown = [int(i) for i in re.findall(r'data-incident-id="(\d+)"', html)]
    assert sorted(shown) == sorted([mine, paging_me]) and not_mine not in shown
    assert f"quick-ack-{paging_me}" in html  # triage from here too
    # Acknowledged by someone else: no longer paging me, and not mine.
    with app.app_context():
        incident_service.acknowledge_incident(db.session, db.session.get(Incident, paging_me), actor="test",
                                              now=utcnow())
        db.session.commit()
    html = client.get("/mine").get_data(as_text=True)
    assert [int(i) for i in re.findall(r'data-incident-id="(\d+)"', html)] == [mine]


def test_responders_land_on_mine_after_sign_in_admins_on_the_dashboard(app, world):
    from tests.web.conftest import login

    assert login(app.test_client(), world.responder_email).headers["Location"] == "/mine"
    assert login(app.test_client(), world.admin_email).headers["Location"] == "/dashboard"
    empty = signed_in(app, world.admin_email).get("/mine").get_data(as_text=True)
    assert 'id="mine-empty"' in empty


def visible_text(html: str) -> str:
    """The page without its tags."""
    return re.sub(r"<[^>]+>", "", html)


def test_incident_page_puts_actions_first_and_snoozes(app, world):
    client = signed_in(app, world.responder_email)
    url = f"/incidents/{world.incident_id}"
    html = client.get(url).get_data(as_text=True)
    assert html.index('id="actions"') < html.index('class="facts"') < html.index('id="timeline"')
    assert 'id="paging-now"' in html  # paging is in progress: level 1 pages Pat
    assert 'id="nav-menu"' in html and "<summary>Menu</summary>" in html
    token = csrf_token_from(html)
    response = client.post(f"{url}/snooze", data={"snooze-csrf_token": token, "snooze-acting_as": world.responder_id,
                                                  "snooze-minutes": "30"})
    assert response.status_code == 303
    snoozed = incident(app, world.incident_id)
    assert (snoozed.status, snoozed.snoozed_by_id) == ("acknowledged", world.responder_id)
    html = client.get(url).get_data(as_text=True)
    # Times are <time> elements (UTC on hover): compare the text a reader sees.
    assert f"Snoozed until {snoozed.snoozed_until:%H:%M} UTC by Rita Responder" in visible_text(html)
    assert 'id="paging-now"' not in html  # nobody is being paged while it is snoozed
    listed = client.get("/incidents").get_data(as_text=True)
    assert ">snoozed<" in listed and f"until {snoozed.snoozed_until:%H:%M} UTC" in visible_text(listed)
    # Bad minutes: a form error, nothing changes.
    before = incident(app, world.incident_id).snoozed_until
    bad = client.post(f"{url}/snooze", data={"snooze-csrf_token": token, "snooze-acting_as": world.responder_id,
                                             "snooze-minutes": "5000"})
    assert bad.status_code == 422 and "must be an integer from 1 to 1440" in bad.get_data(as_text=True)
    assert incident(app, world.incident_id).snoozed_until == before


def test_escalation_exhausted_is_its_own_state(app, world):
    with app.app_context():
        # The world's policy has one level: past its delay there is nobody left to page.
        run_escalation_step(db.session, now=utcnow() + timedelta(hours=1), base_url=BASE_URL)
        db.session.commit()
    assert incident(app, world.incident_id).paging_state == "exhausted"
    client = signed_in(app, world.viewer_email)
    page = client.get(f"/incidents/{world.incident_id}").get_data(as_text=True)
    assert "Escalation exhausted" in page and 'id="paging-now"' not in page
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert re.search(r'<span id="count-exhausted">1</span>', dashboard)
    assert "escalation exhausted</span>" in dashboard
