"""Personal notification rules: one page per rule at its delay, cancelled on acknowledge; the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from pagerpal_core.models import Notification, User
from pagerpal_core.services.incidents import acknowledge_incident, snooze_incident
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from pagerpal_worker.loop import run_cycle
from tests.conftest import csrf_token_from
from tests.delivery.conftest import make_responder, page, smtp_env
from tests.delivery.test_failover import rows, sms_then_email
from tests.factories import make_user
from tests.web.conftest import basic, login
from tests.worker.conftest import make_incident


def test_sms_at_0_email_at_5_acknowledged_at_minute_3_never_emails(session, make_ctx, fake_infobip, fake_smtp):
    user = sms_then_email(session, email_after=5)
    incident = make_incident(session)
    start = utcnow()
    page(session, incident, user, now=start)
    ctx = make_ctx(fake_infobip.url, **smtp_env(fake_smtp))
    for minute in range(0, 3):
        run_cycle(ctx, start + timedelta(minutes=minute))
    assert len(fake_infobip.requests) == 1 and fake_smtp.messages == []
    acknowledge_incident(session, incident, actor=user, now=start + timedelta(minutes=3))
    session.commit()
    for minute in range(3, 12):
        run_cycle(ctx, start + timedelta(minutes=minute))
    assert fake_smtp.messages == []
    assert [(r.channel, r.status) for r in rows(session, incident)] == [("sms", "sent"), ("email", "cancelled")]


def test_without_acknowledge_the_email_goes_at_its_delay(session, make_ctx, fake_infobip, fake_smtp):
    user = sms_then_email(session, email_after=5)
    incident = make_incident(session)
    start = utcnow()
    page(session, incident, user, now=start)
    ctx = make_ctx(fake_infobip.url, **smtp_env(fake_smtp))
    run_cycle(ctx, start + timedelta(minutes=4, seconds=59))
    assert fake_smtp.messages == []
    run_cycle(ctx, start + timedelta(minutes=5))
    assert len(fake_smtp.messages) == 1


def test_snooze_cancels_pending_rule_pages(session):
    user = sms_then_email(session, email_after=5)
    incident = make_incident(session)
    now = utcnow()
    page(session, incident, user, now=now)
    snooze_incident(session, incident, minutes=30, actor=user, now=now + timedelta(minutes=1))
    session.commit()
    assert {r.status for r in rows(session, incident)} == {"cancelled"}


def test_user_without_rules_gets_every_enabled_method_at_once(session):
    user = make_responder(session, whatsapp="+15550100102")
    incident = make_incident(session)
    now = utcnow()
    page(session, incident, user, now=now)
    found = rows(session, incident)
    assert sorted(r.channel for r in found) == ["email", "sms", "whatsapp"]
    assert {r.next_attempt_at for r in found} == {now}


# --- the API -----------------------------------------------------------------------------

@pytest.fixture
def people(app):
    """A responder with SMS + email, another responder, an admin; ids and headers."""
    with app.app_context():
        alice = make_responder(db.session)
        bob = make_responder(db.session, phone="+15550100199", email="bob@acme.test")
        admin = make_user(db.session, role="admin", email="root@acme.test")
        db.session.commit()
        methods = {m.channel: m.id for m in alice.contact_methods}
        bob_method = bob.contact_methods[0].id
        return {"alice": (alice.id, basic(alice.email)), "bob": (bob.id, basic(bob.email)),
                "admin": (admin.id, basic(admin.email)), "methods": methods, "bob_method": bob_method}


def url(user_id):
    return f"/api/v1/users/{user_id}/notification-rules"


def test_api_default_then_own_rules(client, people):
    alice_id, alice = people["alice"]
    sms, email = people["methods"]["sms"], people["methods"]["email"]
    got = client.get(url(alice_id), headers=alice).get_json()
    assert got["default"] is True and got["rules"] == []
    assert {(r["channel"], r["delay_minutes"]) for r in got["effective"]} == {("sms", 0), ("email", 0)}
    body = {"rules": [{"contact_method_id": sms, "delay_minutes": 0}, {"contact_method_id": email,
                                                                       "delay_minutes": 5}]}
    response = client.put(url(alice_id), json=body, headers=alice)
    assert response.status_code == 200, response.get_json()
    got = response.get_json()
    assert got["default"] is False and got["rules"] == body["rules"]
    assert [(r["channel"], r["delay_minutes"]) for r in got["effective"]] == [("sms", 0), ("email", 5)]
    # An admin may change them too, and an empty list returns to the default.
    admin = people["admin"][1]
    assert client.put(url(alice_id), json={"rules": []}, headers=admin).get_json()["default"] is True


def test_api_refuses_other_users(client, people):
    alice_id, _ = people["alice"]
    bob = people["bob"][1]
    assert client.get(url(alice_id), headers=bob).status_code == 403
    response = client.put(url(alice_id), json={"rules": []}, headers=bob)
    assert response.status_code == 403
    assert client.get(url(999999), headers=people["admin"][1]).status_code == 404


@pytest.mark.parametrize("rules, field", [
    ([{"contact_method_id": 987654, "delay_minutes": 0}], "rules[0].contact_method_id"),
    ([{"contact_method_id": "BOB", "delay_minutes": 0}], "rules[0].contact_method_id"),
    ([{"contact_method_id": "SMS", "delay_minutes": -1}], "rules[0].delay_minutes"),
    ([{"contact_method_id": "SMS", "delay_minutes": 1441}], "rules[0].delay_minutes"),
    ([{"contact_method_id": "SMS", "delay_minutes": "5"}], "rules[0].delay_minutes"),
    ([{"contact_method_id": "SMS", "delay_minutes": 0}, {"contact_method_id": "SMS", "delay_minutes": 3}],
     "rules[1].contact_method_id"),
    ("sms first", "rules"),
    ([7], "rules[0]"),
])
def test_api_bad_rules_are_422_naming_the_field_and_change_nothing(client, people, rules, field):
    alice_id, alice = people["alice"]
    ids = {"SMS": people["methods"]["sms"], "BOB": people["bob_method"]}
    if isinstance(rules, list):
        rules = [{k: ids.get(v, v) if k == "contact_method_id" else v for k, v in r.items()}
                 if isinstance(r, dict) else r for r in rules]
    response = client.put(url(alice_id), json={"rules": rules}, headers=alice)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert field in error["fields"], error
    assert client.get(url(alice_id), headers=alice).get_json()["default"] is True


def test_paging_writes_one_row_per_rule_due_at_its_delay(session):
    user = sms_then_email(session, email_after=7)
    incident = make_incident(session)
    now = utcnow()
    page(session, incident, user, now=now)
    due = {r.channel: r.next_attempt_at for r in session.scalars(select(Notification))}
    assert due == {"sms": now, "email": now + timedelta(minutes=7)}


# --- the UI ------------------------------------------------------------------------------

def test_ui_user_edits_own_rules_and_bad_delays_change_nothing(app, client, people):
    alice_id, alice = people["alice"]
    sms, email = people["methods"]["sms"], people["methods"]["email"]
    with app.app_context():
        email_address = db.session.get(User, alice_id).email
    login(client, email_address)
    page_html = client.get(f"/users/{alice_id}").get_data(as_text=True)
    assert 'id="rules-form"' in page_html
    token = csrf_token_from(page_html)
    response = client.post(f"/users/{alice_id}/notification-rules",
                           data={"csrf_token": token, f"delay-{sms}": "0", f"delay-{email}": "5"})
    assert response.status_code == 303
    got = client.get(url(alice_id), headers=alice).get_json()
    assert got["rules"] == [{"contact_method_id": sms, "delay_minutes": 0},
                            {"contact_method_id": email, "delay_minutes": 5}]
    response = client.post(f"/users/{alice_id}/notification-rules",
                           data={"csrf_token": token, f"delay-{sms}": "0", f"delay-{email}": "99999"})
    assert response.status_code == 422
    assert "between 0 and 1440" in response.get_data(as_text=True)
    assert client.get(url(alice_id), headers=alice).get_json()["rules"] == got["rules"]
