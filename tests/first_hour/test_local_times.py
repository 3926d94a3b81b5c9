"""Times in the reader's zone: one central filter, the UTC time on hover, schedule pictures in the schedule's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pagerpal_core.localtime import show_time, zone_or_utc
from pagerpal_core.models import Incident, User
from pagerpal_web.extensions import db
from tests.web.conftest import login
from tests.web.test_ui_pages import build_world

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


def test_show_time_uses_the_zone_abbreviation_and_keeps_utc():
    moment = datetime(2027, 1, 15, 8, 30, tzinfo=UTC)
    shown = show_time(moment, "Europe/Berlin", "%Y-%m-%d %H:%M UTC")
    assert shown.text == "2027-01-15 09:30 CET"
    assert shown.utc == "2027-01-15 08:30:00 UTC" and shown.iso == "2027-01-15T08:30:00Z"
    summer = show_time(datetime(2027, 7, 15, 8, 30, tzinfo=UTC), "America/New_York", "%H:%M UTC")
    assert summer.text == "04:30 EDT"
    assert show_time(moment, "UTC").text == "2027-01-15 08:30 UTC"
    # A stale or empty zone name never breaks a page: UTC.
    assert zone_or_utc("Not/AZone").key == "UTC" and zone_or_utc(None).key == "UTC"


def test_incident_page_shows_the_readers_zone_with_utc_on_hover(app):
    world = build_world(app)
    opened = datetime(2027, 1, 15, 8, 30, tzinfo=UTC)
    with app.app_context():
        incident = db.session.get(Incident, world.incident_id)
        incident.created_at = opened
        db.session.execute(User.__table__.update().where(User.email == world.viewer_email)
                           .values(timezone="Asia/Tokyo"))
        db.session.commit()
    client = app.test_client()
    login(client, world.viewer_email)
    html = client.get(f"/incidents/{world.incident_id}").get_data(as_text=True)
    expected = '<time datetime="2027-01-15T08:30:00Z" title="2027-01-15 08:30:00 UTC">2027-01-15 17:30 JST</time>'
    assert expected in html

    admin = app.test_client()
    login(admin, world.admin_email)  # the admin's zone is UTC
    assert ">2027-01-15 08:30 UTC</time>" in admin.get(f"/incidents/{world.incident_id}").get_data(as_text=True)


def test_schedule_picture_days_follow_the_schedules_zone(app):
    world = build_world(app)  # "Primary" is in Europe/Berlin
    client = app.test_client()
    login(client, world.viewer_email)
    html = client.get(f"/schedules/{world.schedule_id}").get_data(as_text=True)
    assert "days in Europe/Berlin" in html
    assert "days in UTC" in client.get("/schedules").get_data(as_text=True)  # the list: the reader's zone
