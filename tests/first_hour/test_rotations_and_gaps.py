"""Rotations keep the order chosen (create in slot order, move up/down, edit in place) and gaps are found."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pagerpal_core.errors import Invalid, NotFound
from pagerpal_core.models import Rotation, Schedule
from pagerpal_core.services import escalation_policies, schedules
from pagerpal_core.services.coverage import policy_schedule_gaps, schedule_gaps
from pagerpal_core.services.oncall import who_is_on_call
from pagerpal_core.services.rotation_order import move_rotation_participant
from pagerpal_web.extensions import db
from tests.conftest import csrf_token_from
from tests.factories import make_user
from tests.web.conftest import login

# Reads and arithmetic over rows the other tests store on both backends: SQLite is enough here.
pytestmark = pytest.mark.backends("sqlite")

NOW = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)


def _names(rotation: Rotation) -> list[str]:
    return [p.user_id for p in rotation.participants]


def test_move_participant_up_and_down_keeps_order_and_on_call_follows(session):
    carol, alice, bob = (make_user(session, name=n) for n in ("Carol", "Alice", "Bob"))
    schedule = schedules.create_schedule(session, name="Ordered", timezone="UTC", now=NOW)
    rotation = schedules.create_rotation(session, schedule, start_date=date(2031, 3, 3), shift_length=1,
                                         shift_unit="days", handoff_time="00:00",
                                         participants=[carol, alice, bob], now=NOW)
    assert _names(rotation) == [carol.id, alice.id, bob.id]
    assert who_is_on_call(session, schedule, NOW).user_id == carol.id
    assert who_is_on_call(session, schedule, NOW + timedelta(days=1)).user_id == alice.id

    move_rotation_participant(session, rotation, rotation.participants[2].id, "up")   # Bob before Alice
    assert _names(rotation) == [carol.id, bob.id, alice.id]
    assert who_is_on_call(session, schedule, NOW + timedelta(days=1)).user_id == bob.id
    move_rotation_participant(session, rotation, rotation.participants[0].id, "down")  # Carol after Bob
    assert _names(rotation) == [bob.id, carol.id, alice.id]
    # At either end nothing moves.
    move_rotation_participant(session, rotation, rotation.participants[0].id, "up")
    move_rotation_participant(session, rotation, rotation.participants[2].id, "down")
    assert _names(rotation) == [bob.id, carol.id, alice.id]
    with pytest.raises(Invalid):
        move_rotation_participant(session, rotation, rotation.participants[0].id, "sideways")
    with pytest.raises(NotFound):
        move_rotation_participant(session, rotation, 10**9, "up")


def test_gaps_are_the_stretches_nobody_covers(session):
    ada = make_user(session, name="Ada")
    schedule = schedules.create_schedule(session, name="Gappy", timezone="UTC", now=NOW)
    schedules.create_entry(session, schedule, user=ada, starts_at=NOW + timedelta(hours=2),
                           ends_at=NOW + timedelta(hours=5), now=NOW)
    schedules.create_entry(session, schedule, user=ada, starts_at=NOW + timedelta(hours=5),
                           ends_at=NOW + timedelta(days=1), now=NOW)
    gaps = schedule_gaps(session, schedule, NOW, NOW + timedelta(days=2))
    assert [(g.start, g.end) for g in gaps] == [(NOW, NOW + timedelta(hours=2)),
                                                (NOW + timedelta(days=1), NOW + timedelta(days=2))]
    # Not used by a policy yet: the dashboard does not warn.
    assert policy_schedule_gaps(session, now=NOW) == []
    escalation_policies.create_policy(session, name="P", levels=[
        {"delay_minutes": 5, "targets": [{"type": "schedule", "id": schedule.id}]}], now=NOW)
    warned = policy_schedule_gaps(session, now=NOW)
    assert [w.schedule.id for w in warned] == [schedule.id] and len(warned[0].gaps) == 2

    covered = schedules.create_schedule(session, name="Covered", timezone="UTC", now=NOW)
    schedules.create_rotation(session, covered, start_date=date(2031, 1, 1), participants=[ada], now=NOW)
    assert schedule_gaps(session, covered, NOW, NOW + timedelta(days=14)) == []


def _schedule_page(app, client, schedule_id):
    html = client.get(f"/schedules/{schedule_id}").get_data(as_text=True)
    return html, csrf_token_from(html)


def test_rotation_form_keeps_the_chosen_order_and_edits_in_place(app):
    with app.app_context():
        admin = make_user(db.session, role="admin", email="admin@example.test")
        people = {n: make_user(db.session, name=n).id for n in ("Alice", "Bob", "Carol")}
        schedule = schedules.create_schedule(db.session, name="Form", timezone="Europe/Berlin", now=NOW)
        db.session.commit()
        schedule_id, admin_email = schedule.id, admin.email
    client = app.test_client()
    login(client, admin_email)
    html, token = _schedule_page(app, client, schedule_id)
    assert 'name="rotation-participants-0"' in html and "choose…" in html
    response = client.post(f"/schedules/{schedule_id}/rotations", data={
        "csrf_token": token, "rotation-name": "Weekly", "rotation-shift_length": "1", "rotation-shift_unit": "weeks",
        "rotation-handoff_time": "09:00", "rotation-start_date": "2031-03-03",
        "rotation-participants-0": str(people["Carol"]), "rotation-participants-1": str(people["Alice"]),
        "rotation-participants-2": str(people["Bob"])})
    assert response.status_code == 303
    with app.app_context():
        rotation = db.session.get(Schedule, schedule_id).rotations[0]
        assert _names(rotation) == [people["Carol"], people["Alice"], people["Bob"]]
        rotation_id = rotation.id

    # Nobody chosen: a form error, nothing written.
    response = client.post(f"/schedules/{schedule_id}/rotations", data={
        "csrf_token": token, "rotation-shift_length": "1", "rotation-shift_unit": "weeks",
        "rotation-handoff_time": "09:00", "rotation-start_date": "2031-03-03"})
    assert response.status_code == 422 and "Choose at least one person" in response.get_data(as_text=True)

    response = client.post(f"/schedules/{schedule_id}/rotations/{rotation_id}", data={
        "csrf_token": token, f"rotation-{rotation_id}-name": "Daily now", f"rotation-{rotation_id}-shift_length": "2",
        f"rotation-{rotation_id}-shift_unit": "days", f"rotation-{rotation_id}-handoff_time": "08:30",
        f"rotation-{rotation_id}-start_date": "2031-03-04"})
    assert response.status_code == 303
    bad = client.post(f"/schedules/{schedule_id}/rotations/{rotation_id}", data={
        "csrf_token": token, f"rotation-{rotation_id}-name": "x", f"rotation-{rotation_id}-shift_length": "1",
        f"rotation-{rotation_id}-shift_unit": "days", f"rotation-{rotation_id}-handoff_time": "25:99",
        f"rotation-{rotation_id}-start_date": "2031-03-04"})
    assert bad.status_code == 422
    with app.app_context():
        rotation = db.session.get(Rotation, rotation_id)
        assert (rotation.name, rotation.shift_length, rotation.shift_unit, rotation.handoff_time,
                rotation.start_date) == ("Daily now", 2, "days", "08:30", date(2031, 3, 4))
        assert _names(rotation) == [people["Carol"], people["Alice"], people["Bob"]]  # order untouched
        second = rotation.participants[1].id

    assert client.post(f"/schedules/{schedule_id}/rotations/{rotation_id}/participants/{second}/move",
                       data={"csrf_token": token, "direction": "up"}).status_code == 303
    with app.app_context():
        assert _names(db.session.get(Rotation, rotation_id)) == [people["Alice"], people["Carol"], people["Bob"]]


def test_schedule_page_warns_about_gaps(app):
    with app.app_context():
        make_user(db.session, role="admin")
        viewer = make_user(db.session, role="viewer", email="viewer@example.test")
        schedule = schedules.create_schedule(db.session, name="Empty", timezone="UTC", now=NOW)
        db.session.commit()
        schedule_id, email = schedule.id, viewer.email
    client = app.test_client()
    login(client, email)
    html = client.get(f"/schedules/{schedule_id}").get_data(as_text=True)
    assert 'id="gap-warning"' in html and "Nobody is on call for 1 stretch" in html
