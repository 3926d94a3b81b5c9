"""The UI: /heartbeats (list, create with the ping URL shown once, delete), the policy page's
"now reaches" and its date-time picker, the watchdog on /settings."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from pagerpal_core.models import HeartbeatMonitor
from pagerpal_core.services.escalation_policies import create_policy
from pagerpal_core.services.schedules import create_override, create_rotation, create_schedule
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from pagerpal_worker.loop import run_cycle
from tests.conftest import csrf_token_from
from tests.core.routing_setup import open_incident
from tests.factories import make_user
from tests.web.test_ui_pages import signed_in

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
def people(app):
    """An admin, a viewer (both in Europe/Berlin), and a policy whose level 1 pages a Berlin rotation."""
    with app.app_context():
        admin = make_user(db.session, role="admin", name="Admin")
        viewer = make_user(db.session, role="viewer", name="Viewer")
        admin.timezone = viewer.timezone = "Europe/Berlin"
        ada, ben = make_user(db.session, name="Ada"), make_user(db.session, name="Ben")
        schedule = create_schedule(db.session, name="primary", timezone="Europe/Berlin")
        create_rotation(db.session, schedule, start_date="2027-03-01", shift_unit="days", handoff_time="09:00",
                        participants=[ada, ben])
        now = utcnow()
        # Ben covers from an hour ago for a day, so "now reaches" is known whatever the clock says.
        create_override(db.session, schedule, user=ben, starts_at=now - timedelta(hours=1),
                        ends_at=now + timedelta(days=1))
        policy = create_policy(db.session, name="default", levels=[
            {"delay_minutes": 5, "targets": [{"type": "schedule", "id": schedule.id}]}])
        db.session.commit()
        return {"admin": admin.email, "viewer": viewer.email, "policy_id": policy.id}


def _text(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))))


def test_heartbeats_page_create_shows_the_url_once_and_delete(app, people):
    client = signed_in(app, people["admin"])
    page = client.get("/heartbeats")
    assert page.status_code == 200 and "No heartbeat monitors yet" in _text(page)
    token = csrf_token_from(page.get_data(as_text=True))
    created = client.post("/heartbeats", data={
        "csrf_token": token, "name": "nightly-backup", "interval_seconds": "86400", "grace_seconds": "1800",
        "escalation_policy_id": str(people["policy_id"])})
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    url = re.search(r'id="ping-url"[^>]*>([^<]+)<', created.get_data(as_text=True)).group(1)
    assert re.fullmatch(r"https?://[^/]+/api/v1/heartbeats/pph_[\w-]+/ping", url)
    ping_token = url.split("/")[-2]
    # The list shows the masked token only, never the URL again.
    listed = client.get("/heartbeats").get_data(as_text=True)
    assert ping_token not in listed and "pph_…" + ping_token[-4:] in listed
    assert "waiting for first ping" in listed
    assert client.get(f"/api/v1/heartbeats/{ping_token}/ping").status_code == 200
    assert "up" in _text(client.get("/heartbeats"))

    with app.app_context():
        monitor_id = db.session.scalar(select(HeartbeatMonitor.id))
    deleted = client.post(f"/heartbeats/{monitor_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(HeartbeatMonitor)) == 0


def test_heartbeat_form_errors_sit_next_to_the_field(app, people):
    client = signed_in(app, people["admin"])
    token = csrf_token_from(client.get("/heartbeats").get_data(as_text=True))
    response = client.post("/heartbeats", data={"csrf_token": token, "name": "x", "interval_seconds": "5",
                                                "escalation_policy_id": str(people["policy_id"])})
    assert response.status_code == 422 and "must be at least 10" in _text(response)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(HeartbeatMonitor)) == 0


def test_viewers_see_monitors_but_no_forms(app, people):
    client = signed_in(app, people["viewer"])
    page = client.get("/heartbeats").get_data(as_text=True)
    assert 'id="create-heartbeat"' not in page
    assert client.post("/heartbeats", data={}).status_code in (400, 403)


def test_policy_page_now_reaches_and_the_picker(app, people):
    client = signed_in(app, people["viewer"])
    url = f"/escalation-policies/{people['policy_id']}"
    text = _text(client.get(url))
    assert re.search(r"Level 1 now reaches: Ben \(override until [^,]+ CES?T, schedule primary\)", text), text
    # The picker reads a local time in the viewer's zone (Europe/Berlin): 2027-03-28 is the spring-forward
    # day; the 09:00 local handoff gives Ben the turn (Ada had 2027-03-27).
    page = client.get(url, query_string={"at": "2027-03-28T08:59"})
    assert page.status_code == 200
    assert re.search(r"1 5 min Ada \(rotation turn until 09:00 CEST", _text(page))
    assert re.search(r"1 5 min Ben \(rotation turn until Mon 29 Mar 09:00 CEST",
                     _text(client.get(url, query_string={"at": "2027-03-28T09:00"})))
    for bad in ("tomorrow", "2027-02-30T10:00", "1900-01-01T00:00"):
        response = client.get(url, query_string={"at": bad})
        assert response.status_code == 422 and 'id="at-error"' in response.get_data(as_text=True), bad


def test_settings_shows_the_watchdog(app, people, make_ctx):
    client = signed_in(app, people["viewer"])
    assert "has not run yet" in _text(client.get("/settings"))
    now = utcnow()
    with app.app_context():
        cy = make_user(db.session, name="Cy", contacts=[{"channel": "sms", "destination": "+14155550123"}])
        policy = create_policy(db.session, name="direct", levels=[{"targets": [{"type": "user", "id": cy.id}]}])
        incident_id = open_incident(db.session, None, policy=policy, now=now - timedelta(hours=1)).id
        db.session.commit()
    run_cycle(make_ctx(ESCALATION_WORKER_ENABLED="false"), now)
    text = _text(client.get("/settings"))
    assert "1 incident(s) overdue for escalation" in text and f"#{incident_id}" in text
