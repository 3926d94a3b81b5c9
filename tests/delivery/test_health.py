"""Delivery health people can see: paging failed, on-call people nobody can reach, Send test, degraded channels."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from pagerpal_core.models import ContactMethod, Notification
from pagerpal_core.services.delivery_health import channel_delivery, paging_failed_ids, reach_warnings
from pagerpal_core.services.incident_queries import dashboard_summary
from pagerpal_core.services.schedules import create_entry, create_schedule
from pagerpal_core.settings import Settings
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from pagerpal_worker.loop import run_cycle
from tests.conftest import csrf_token_from
from tests.delivery.conftest import page
from tests.factories import make_user
from tests.web.conftest import login
from tests.worker.conftest import make_incident, read

# Reads and arithmetic over rows the other tests store on both backends: SQLite is enough here.
pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
def make_account(app):
    """Create a user through the app's own session (committed, detached): make_account(role="viewer")."""
    def make(**kwargs):
        with app.app_context():
            user = make_user(db.session, **kwargs)
            db.session.commit()
            db.session.expunge(user)
            return user
    return make


def on_call(session, user, *, start, hours=8):
    """Put `user` on call in a schedule of their own from `start` for `hours`."""
    schedule = create_schedule(session, name=f"sched-{user.id}")
    create_entry(session, schedule, user=user, starts_at=start, ends_at=start + timedelta(hours=hours))
    session.commit()
    return schedule


def failed_page(session, user, method, *, at, status="undeliverable"):
    """A page to `method` that ended `status` (what a receipt or a permanent error leaves)."""
    session.add(Notification(user_id=user.id, contact_method_id=method.id, channel=method.channel,
                             destination=method.destination, kind="page", status=status, attempts=1,
                             first_attempt_at=at, sent_at=at, created_at=at, updated_at=at,
                             last_error="receipt: error EC_ABSENT_SUBSCRIBER"))
    session.commit()


def test_every_page_of_the_round_failed_shows_paging_failed(session, make_ctx, fake_infobip, client,
                                                            make_account):
    # Email only, and the worker has no SMTP: the page fails permanently and there is nothing to fail over to.
    user = make_user(session, contacts=[{"channel": "email", "destination": "only@acme.test"}])
    failing = make_incident(session, title="Nobody reached")
    fine = make_incident(session, title="Still paging")
    session.commit()
    now = utcnow()
    page(session, failing, user, now=now)
    run_cycle(make_ctx(fake_infobip.url), now)
    sms_user = make_user(session, contacts=[{"channel": "sms", "destination": "+15550100999"}])
    page(session, fine, sms_user, now=now + timedelta(seconds=1))  # pending: not failed
    statuses = read(session, lambda: [n.status for n in session.scalars(
        select(Notification).where(Notification.incident_id == failing.id))])
    assert statuses and all(s in ("failed", "exhausted") for s in statuses)

    assert read(session, lambda: paging_failed_ids(session)) == {failing.id}
    summary = read(session, lambda: dashboard_summary(session, Settings.from_env(environ={}), now=now))
    assert summary.paging_failed == {failing.id}

    make_account(role="admin")  # an admin exists, so /login signs in (not first-run setup)
    viewer = make_account(role="viewer")
    login(client, viewer.email)
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'id="count-paging-failed">1<' in html
    assert html.count("paging failed</span>") == 1
    detail = client.get(f"/incidents/{failing.id}").get_data(as_text=True)
    assert 'id="paging-failed"' in detail
    assert 'id="paging-failed"' not in client.get(f"/incidents/{fine.id}").get_data(as_text=True)


def test_paging_failed_counts_in_metrics(session, make_app):
    user = make_user(session, contacts=[{"channel": "sms", "destination": "+15550100101"}])
    incident = make_incident(session)
    session.commit()
    [notification_id] = page(session, incident, user)
    row = session.get(Notification, notification_id)
    row.status = "undeliverable"
    session.commit()
    body = make_app(METRICS="open").test_client().get("/metrics").get_data(as_text=True)
    samples = {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples}
    assert samples["pagerpal_incidents_paging_failed"] == 1


def test_on_call_people_without_a_working_channel_are_warned_about(session):
    now = datetime(2026, 3, 2, 8, 0, tzinfo=utcnow().tzinfo)
    nothing = make_user(session, name="Nora None", contacts=[
        {"channel": "sms", "destination": "+15550100201", "enabled": False}])
    broken = make_user(session, name="Sam Broken", contacts=[{"channel": "sms", "destination": "+15550100202"}])
    mixed = make_user(session, name="Mia Mixed", contacts=[
        {"channel": "sms", "destination": "+15550100203"}, {"channel": "email", "destination": "mia@acme.test"}])
    fine = make_user(session, name="Fay Fine", contacts=[
        {"channel": "sms", "destination": "+15550100204"}, {"channel": "email", "destination": "fay@acme.test"}])
    later = make_user(session, name="Lou Later", contacts=[])
    session.commit()
    on_call(session, nothing, start=now - timedelta(hours=1))
    on_call(session, broken, start=now + timedelta(hours=10))      # within 24 h
    on_call(session, mixed, start=now + timedelta(hours=1))
    on_call(session, fine, start=now)
    on_call(session, later, start=now + timedelta(hours=30))       # beyond 24 h: not yet
    failed_page(session, broken, broken.contact_methods[0], at=now - timedelta(hours=5, minutes=50))  # 02:10
    failed_page(session, broken, broken.contact_methods[0], at=now - timedelta(hours=1))
    failed_page(session, mixed, mixed.contact_methods[0], at=now - timedelta(days=2))
    failed_page(session, fine, fine.contact_methods[0], at=now - timedelta(hours=2))
    session.add(Notification(user_id=fine.id, contact_method_id=fine.contact_methods[1].id, channel="email",
                             destination="fay@acme.test", status="sent", sent_at=now - timedelta(days=3),
                             created_at=now - timedelta(days=3), updated_at=now - timedelta(days=3)))
    session.commit()
    texts = [w.text for w in reach_warnings(session, now=now)]
    assert texts == ["Mia Mixed: SMS failing since Feb 28 08:00 (UTC), no other channel delivered in 30 days",
                     "Nora None: on call with no enabled contact method",
                     "Sam Broken: SMS failing since 02:10 (UTC), no other channel"]


def test_dashboard_renders_the_reach_warning(session, client, make_account):
    broken = make_user(session, name="Sam Broken", contacts=[{"channel": "sms", "destination": "+15550100202"}])
    session.commit()
    on_call(session, broken, start=utcnow() - timedelta(minutes=5))
    failed_page(session, broken, broken.contact_methods[0], at=utcnow() - timedelta(minutes=30))
    make_account(role="admin")  # an admin exists, so /login signs in (not first-run setup)
    viewer = make_account(role="viewer")
    login(client, viewer.email)
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'id="reach-warnings"' in html
    assert "Sam Broken: SMS failing since" in html and "no other channel" in html


def test_send_test_goes_through_the_outbox_and_shows_its_outcome(session, app, client, make_account, make_ctx,
                                                                   fake_infobip):
    make_account(role="admin")
    me = make_account(contacts=[{"channel": "sms", "destination": "+15550100301"}])
    other = make_account(role="responder", contacts=[{"channel": "sms", "destination": "+15550100302"}])
    login(client, me.email)
    page_html = client.get(f"/users/{me.id}").get_data(as_text=True)
    assert "last: never paged" in page_html
    method_id = read(session, lambda: session.scalar(select(ContactMethod.id).where(ContactMethod.user_id == me.id)))
    other_method = read(session, lambda: session.scalar(
        select(ContactMethod.id).where(ContactMethod.user_id == other.id)))
    token = csrf_token_from(page_html)
    response = client.post(f"/users/{me.id}/contacts/{method_id}/test", data={"csrf_token": token})
    assert response.status_code == 303
    # Someone else's contact method: refused, nothing queued.
    refused = client.post(f"/users/{other.id}/contacts/{other_method}/test", data={"csrf_token": token})
    assert refused.status_code == 403
    rows = read(session, lambda: session.scalars(select(Notification)).all())
    assert [(r.kind, r.contact_method_id, r.user_id, r.status) for r in rows] == [
        ("test", method_id, me.id, "pending")]
    run_cycle(make_ctx(fake_infobip.url), utcnow())
    assert [m["to"] for m in fake_infobip.sent.values()] == ["15550100301"]
    html = client.get(f"/users/{me.id}").get_data(as_text=True)
    assert "last: sent" in html and "(test)" in html


def test_a_channel_whose_recent_sends_fail_is_degraded(session, make_app):
    user = make_user(session, contacts=[{"channel": "sms", "destination": "+15550100401"}])
    session.commit()
    now = utcnow()
    for minutes in (10, 20, 30):
        failed_page(session, user, user.contact_methods[0], at=now - timedelta(minutes=minutes))
    failed_page(session, user, user.contact_methods[0], at=now - timedelta(hours=3))  # too old to count
    health = read(session, lambda: channel_delivery(session, ("sms", "email"), now=now))
    assert (health["sms"].degraded, health["sms"].attempted, health["sms"].failed) == (True, 3, 3)
    assert not health["email"].degraded
    app = make_app(NOTIFICATION_SENDING_ENABLED="true", INFOBIP_BASE_URL="https://infobip.example.test",
                   INFOBIP_API_KEY="k" * 20, INFOBIP_SMS_SENDER="PagerPal")
    admin = make_user(session, role="admin")
    session.commit()
    client = app.test_client()
    login(client, admin.email)
    html = client.get("/settings").get_data(as_text=True)
    assert html.count("channel-degraded") == 1 and "3 of 3 sends in the last 60 min failed" in html


def test_profile_send_test_queues_a_test_row_for_that_method(session, app, client, make_account):
    make_account(role="admin")
    me = make_account(contacts=[{"channel": "email", "destination": "me@acme.test"}])
    login(client, me.email)
    html = client.get("/profile").get_data(as_text=True)
    method_id = read(session, lambda: session.scalar(select(ContactMethod.id).where(ContactMethod.user_id == me.id)))
    assert f'id="my-outcome-{method_id}"' in html and "last: never paged" in html
    response = client.post(f"/profile/contacts/{method_id}/test", data={"csrf_token": csrf_token_from(html)})
    assert response.status_code in (302, 303)
    rows = read(session, lambda: session.scalars(select(Notification)).all())
    assert [(r.kind, r.contact_method_id, r.user_id) for r in rows] == [("test", method_id, me.id)]
    assert "last: pending" in client.get("/profile").get_data(as_text=True)
