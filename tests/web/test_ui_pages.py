"""Server-side UI tests: every page renders, roles decide what is shown and what is accepted,
CSRF is required, alert text is escaped, secrets stay masked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest

from pagerpal_core.models import Incident, Notification
from pagerpal_core.payloads.common import TRIGGER, AlertEvent
from pagerpal_core.services import escalation_policies, schedules, teams
from pagerpal_core.services.alert_sources import create_alert_source
from pagerpal_core.services.ingestion import ingest_event
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from tests.conftest import csrf_token_from
from tests.factories import make_user
from tests.web.conftest import login

# Rendering does not depend on the database; the action tests run on both backends.
pytestmark = pytest.mark.backends("sqlite")

SCRIPT_TITLE = '<script>alert("pwned")</script> disk full'
BASE_URL = "http://pagerpal.test"


@dataclass
class World:
    admin_email: str
    responder_email: str
    viewer_email: str
    paged_id: int          # a responder identity without a login, on call now
    responder_id: int
    incident_id: int
    failed_notification_id: int
    source_id: int
    schedule_id: int
    policy_id: int
    team_id: int
    full_key: str


def build_world(app) -> World:
    """Users of every role, a team, a schedule with someone on call, a policy, a source and an
    incident (with an alert-provided `<script>` title) paged through the real services.
    The same on every fresh database, but for the source's key."""
    with app.app_context():
        s = db.session
        now = utcnow()
        admin = make_user(s, role="admin", name="Ada Admin", email="ada.admin@example.test")
        responder = make_user(s, role="responder", name="Rita Responder", email="rita.responder@example.test")
        viewer = make_user(s, role="viewer", name="Vic Viewer", email="vic.viewer@example.test")
        paged = make_user(s, role="responder", name="Pat Paged", password=None, email="pat@example.test",
                          contacts=[{"channel": "sms", "destination": "+14155550123"}])
        team = teams.create_team(s, name="Platform", now=now)
        teams.add_team_member(s, team, paged, now=now)
        schedule = schedules.create_schedule(s, name="Primary", timezone="Europe/Berlin", team=team, now=now)
        schedules.create_entry(s, schedule, user=paged, starts_at=now - timedelta(hours=1),
                               ends_at=now + timedelta(days=2), now=now)
        schedules.create_override(s, schedule, user=responder, starts_at=now + timedelta(days=3),
                                  ends_at=now + timedelta(days=4), reason="swap", now=now)
        policy = escalation_policies.create_policy(s, name="Default", team=team, now=now,
                                          levels=[{"delay_minutes": 10,
                                                   "targets": [{"type": "schedule", "id": schedule.id}]}])
        issued = create_alert_source(s, name="grafana-prod", kind="grafana", policy_id=policy.id, now=now)
        result = ingest_event(s, issued.source, AlertEvent(action=TRIGGER, external_id="disk-1",
                                                           title=SCRIPT_TITLE, severity="critical"),
                              now=now, base_url=BASE_URL)
        incident = s.get(Incident, result.incident_id)
        failed = Notification(incident_id=incident.id, user_id=paged.id, channel="email",
                              destination="pat.paged@example.test", status="exhausted", attempts=5,
                              last_error="provider said: " + "x" * 900, escalation_level=1)
        s.add(failed)
        s.commit()
        return World(admin.email, responder.email, viewer.email, paged.id, responder.id, incident.id, failed.id,
                     issued.source.id, schedule.id, policy.id, team.id, issued.key)


@pytest.fixture
def world(app):
    return build_world(app)


def signed_in(app, email):
    client = app.test_client()
    response = login(client, email)
    assert response.status_code == 302
    return client


MAIN_PAGES = ["/dashboard", "/mine", "/incidents", "/incidents/{incident_id}", "/users", "/users/{paged_id}", "/teams",
              "/teams/{team_id}", "/schedules", "/schedules/{schedule_id}", "/escalation-policies",
              "/escalation-policies/{policy_id}", "/alert-sources", "/alert-sources/{source_id}", "/settings",
              "/profile"]


def fill(path: str, world: World) -> str:
    return path.format(**world.__dict__)


def test_every_page_renders_for_admin_and_viewer(app, world):
    for email in (world.admin_email, world.viewer_email):
        client = signed_in(app, email)
        for path in MAIN_PAGES:
            response = client.get(fill(path, world))
            assert response.status_code == 200, (email, path)
            assert "text/html" in response.content_type


def test_pages_need_a_session(client, world):
    for path in MAIN_PAGES:
        response = client.get(fill(path, world))
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_alert_text_is_escaped_everywhere(app, world):
    client = signed_in(app, world.admin_email)
    for path in ("/dashboard", "/incidents", f"/incidents/{world.incident_id}"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html, path
        assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; disk full" in html, path


def test_security_headers_forbid_inline_script(app, world):
    response = signed_in(app, world.viewer_email).get(f"/incidents/{world.incident_id}")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = response.get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script in the page"
    assert " style=" not in html and "<style" not in html


def test_viewer_sees_no_action_or_config_forms(app, world):
    client = signed_in(app, world.viewer_email)
    for path in MAIN_PAGES:
        html = client.get(fill(path, world)).get_data(as_text=True)
        # The only post a viewer is offered is signing out.
        actions = re.findall(r'<form method="post"[^>]*action="([^"]+)"', html)
        if path == "/profile":  # their own details, password and contact methods are theirs to change
            assert all(a == "/logout" or a.startswith("/profile") for a in actions), actions
            continue
        assert actions == ["/logout"], (path, actions)
        assert "Acting as" not in html


def test_responder_sees_incident_actions_but_no_config_forms(app, world):
    client = signed_in(app, world.responder_email)
    html = client.get(f"/incidents/{world.incident_id}").get_data(as_text=True)
    actions = re.findall(r'<form method="post"[^>]*action="([^"]+)"', html)
    for action in ("acknowledge", "resolve", "notes", "reassign", "escalate", "retry"):
        assert any(a.endswith("/" + action) for a in actions), action
    assert "Acting as" in html
    for path in ("/users", "/teams", "/schedules", "/escalation-policies", "/alert-sources"):
        html = client.get(path).get_data(as_text=True)
        assert re.findall(r'<form method="post"[^>]*action="([^"]+)"', html) == ["/logout"], path


FORGED_POSTS = [
    ("/incidents/{incident_id}/acknowledge", {"ack-acting_as": "{paged_id}"}),
    ("/incidents/{incident_id}/resolve", {"resolve-acting_as": "{paged_id}"}),
    ("/incidents/{incident_id}/notes", {"note-acting_as": "{paged_id}", "note-text": "hi"}),
    ("/incidents/{incident_id}/notifications/{failed_notification_id}/retry", {"retry-acting_as": "{paged_id}"}),
    ("/users", {"name": "X", "email": "x@example.test", "role": "admin", "timezone": "UTC"}),
    ("/users/{paged_id}/deactivate", {}),
    ("/teams", {"name": "Forged"}),
    ("/schedules", {"name": "Forged", "timezone": "UTC"}),
    ("/escalation-policies", {"name": "Forged", "repeat_count": "0"}),
    ("/alert-sources", {"name": "forged", "kind": "generic"}),
    ("/alert-sources/{source_id}/regenerate", {}),
    ("/alert-sources/{source_id}/test", {}),
]


def event_count(app, incident_id):
    with app.app_context():
        return len(db.session.get(Incident, incident_id).events)


def test_viewer_posts_are_refused_with_403_and_change_nothing(app, world):
    before = event_count(app, world.incident_id)
    client = signed_in(app, world.viewer_email)
    token = csrf_token_from(client.get("/dashboard").get_data(as_text=True))
    for path, data in FORGED_POSTS:
        body = {k: fill(v, world) for k, v in data.items()} | {"csrf_token": token}
        response = client.post(fill(path, world), data=body)
        assert response.status_code == 403, path
    with app.app_context():
        incident = db.session.get(Incident, world.incident_id)
        assert incident.status == "triggered" and len(incident.events) == before


def test_responder_config_posts_are_refused(app, world):
    client = signed_in(app, world.responder_email)
    token = csrf_token_from(client.get("/dashboard").get_data(as_text=True))
    for path, data in FORGED_POSTS[4:]:
        body = {k: fill(v, world) for k, v in data.items()} | {"csrf_token": token}
        assert client.post(fill(path, world), data=body).status_code == 403, path


def test_posts_without_csrf_token_are_refused(app, world):
    client = signed_in(app, world.admin_email)
    for path, data in FORGED_POSTS:
        body = {k: fill(v, world) for k, v in data.items()}
        response = client.post(fill(path, world), data=body)
        assert response.status_code == 400, path
        assert "CSRF" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Incident, world.incident_id).status == "triggered"


def test_cross_origin_post_is_refused_even_with_a_token(app, world):
    client = signed_in(app, world.admin_email)
    token = csrf_token_from(client.get("/teams").get_data(as_text=True))
    response = client.post("/teams", data={"name": "Evil", "csrf_token": token},
                           headers={"Origin": "https://evil.example"})
    assert response.status_code == 403


def test_incident_page_masks_destinations_and_clips_errors(app, world):
    html = signed_in(app, world.responder_email).get(f"/incidents/{world.incident_id}").get_data(as_text=True)
    assert "pat.paged@example.test" not in html
    assert "p" + "•" * 8 + "@example.test" in html
    assert "x" * 400 not in html and "x" * 250 in html
    assert "exhausted" in html and "5 attempts" in html


def test_dashboard_lists_open_incidents_counts_and_warnings(app, world):
    html = signed_in(app, world.viewer_email).get("/dashboard").get_data(as_text=True)
    assert 'id="count-triggered">1<' in html
    assert "grafana-prod" in html and "critical" in html
    assert "Sending is disabled (safe mode)" in html
    assert "No worker has reported yet" in html
    assert 'data-refresh-seconds="5"' in html


def test_dashboard_flags_unrouted_and_unconfigured_providers(make_app, world):
    app = make_app(NOTIFICATION_SENDING_ENABLED="true")
    with app.app_context():
        incident = db.session.get(Incident, world.incident_id)
        incident.unrouted = True
        db.session.commit()
    html = signed_in(app, world.admin_email).get("/dashboard").get_data(as_text=True)
    assert 'id="count-unrouted">1<' in html and "unrouted</span>" in html
    assert "sms is not configured (missing INFOBIP_BASE_URL, INFOBIP_API_KEY, INFOBIP_SMS_SENDER)" in html


def test_settings_names_missing_settings_never_values(make_app, world):
    app = make_app(NOTIFICATION_SENDING_ENABLED="true", SMTP_HOST="smtp.internal.test",
                   SMTP_USER="mailer", SMTP_PASSWORD="hunter2-smtp-secret", SMTP_FROM="pager@example.test",
                   INFOBIP_API_KEY="infobip-secret-value-123")
    html = signed_in(app, world.viewer_email).get("/settings").get_data(as_text=True)
    assert "hunter2-smtp-secret" not in html and "infobip-secret-value-123" not in html
    assert "INFOBIP_BASE_URL" in html and "INFOBIP_SMS_SENDER" in html
    email_row = re.search(r'<tr data-channel="email">.*?</tr>', html, re.S).group(0)
    assert "configured" in email_row and "not configured" not in email_row
    assert "live" in html
    assert "SESSION_COOKIE_SECURE" in html


def test_settings_shows_stale_worker_jobs(app, world):
    from pagerpal_core.models import JobStatus

    with app.app_context():
        db.session.add(JobStatus(name="dispatch", enabled=True, interval_seconds=1.0,
                                 last_started_at=utcnow() - timedelta(minutes=10), run_count=7))
        db.session.commit()
    client = signed_in(app, world.viewer_email)
    assert "stale" in client.get("/settings").get_data(as_text=True)
    assert "Worker job dispatch is stale" in client.get("/dashboard").get_data(as_text=True)


def test_alert_source_keys_are_masked_in_lists(app, world):
    client = signed_in(app, world.admin_email)
    for path in ("/alert-sources", f"/alert-sources/{world.source_id}"):
        html = client.get(path).get_data(as_text=True)
        assert world.full_key not in html
        assert f"ppk_…{world.full_key[-4:]}" in html


def test_incident_filters_and_pagination(app, world):
    client = signed_in(app, world.viewer_email)
    assert "disk full" in client.get("/incidents?status=triggered&severity=critical").get_data(as_text=True)
    assert "disk full" not in client.get("/incidents?status=resolved").get_data(as_text=True)
    assert "disk full" not in client.get("/incidents?severity=info").get_data(as_text=True)
    assert "disk full" in client.get("/incidents?q=DISK").get_data(as_text=True)
    assert "disk full" not in client.get("/incidents?q=%25nomatch").get_data(as_text=True)
    assert client.get("/incidents?page=99").status_code == 200  # clamped to the last page
    # A filter the API would refuse is refused here too (one search rule), with the reason shown.
    bad = client.get("/incidents?status=bogus&source=x")
    assert bad.status_code == 400 and "disk full" not in bad.get_data(as_text=True)
    assert "Search status must be one or more" in bad.get_data(as_text=True)


def test_schedule_timeline_marks_overrides_and_ics_needs_a_session(app, world):
    client = signed_in(app, world.viewer_email)
    html = client.get(f"/schedules/{world.schedule_id}").get_data(as_text=True)
    assert 'data-layer="override"' in html and 'data-layer="entry"' in html
    assert "Pat Paged" in html
    ics = client.get(f"/schedules/{world.schedule_id}.ics")
    assert ics.status_code == 200 and ics.content_type.startswith("text/calendar")
    assert "BEGIN:VCALENDAR" in ics.get_data(as_text=True)
    assert client.get(f"/users/{world.paged_id}.ics").status_code == 200
    anonymous = app.test_client().get(f"/schedules/{world.schedule_id}.ics")
    assert anonymous.status_code == 302


def test_deactivation_confirmation_explains_the_effect(app, world):
    html = signed_in(app, world.admin_email).get(f"/users/{world.paged_id}/deactivate").get_data(as_text=True)
    assert "removes them from on-call resolution" in html
    assert "keeps history intact" in html
    assert "timeline of every open incident assigned to them" in html


def test_incident_list_pages_through_many_incidents(app, world):
    with app.app_context():
        for n in range(60):
            db.session.add(Incident(title=f"Bulk incident {n:02d}", severity="info", status="resolved",
                                    created_at=utcnow() - timedelta(minutes=n)))
        db.session.commit()
    client = signed_in(app, world.viewer_email)
    first = client.get("/incidents?status=resolved").get_data(as_text=True)
    assert "60 incidents" in first and "page 1 of 2" in first
    assert "Bulk incident 00" in first and "Bulk incident 55" not in first
    second = client.get("/incidents?status=resolved&page=2").get_data(as_text=True)
    assert "Bulk incident 55" in second and "Bulk incident 00" not in second
    assert 'rel="prev"' in second and "status=resolved" in re.search(r'href="([^"]+)" rel="prev"', second).group(1)
