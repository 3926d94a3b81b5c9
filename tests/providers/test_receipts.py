"""Delivery receipts: POST /api/v1/notifications/infobip/receipts on both backends."""

from __future__ import annotations

from sqlalchemy import func, select

from pagerpal_core.models import Incident, IncidentEvent, Notification
from pagerpal_core.timeutil import utcnow
from tests.fakes.infobip import delivery_report_entry
from tests.providers.conftest import RECEIPT_TOKEN

URL = "/api/v1/notifications/infobip/receipts"
HEADER = "X-Infobip-Receipt-Token"


def sent_page(session, message_id, *, incident=True, status="sent"):
    """A committed notification the provider accepted with `message_id`."""
    inc = None
    if incident:
        inc = Incident(title="Database down", description="primary unreachable", severity="critical",
                       status="triggered")
        session.add(inc)
        session.flush()
    n = Notification(incident_id=inc.id if inc else None, channel="sms", destination="+41793026727",
                     subject="[CRITICAL] Database down", body="x", status=status, attempts=1,
                     provider_message_id=message_id, provider_status="PENDING_ACCEPTED", sent_at=utcnow())
    session.add(n)
    session.commit()
    return n.id, (inc.id if inc else None)


def state(session, notification_id):
    """(a snapshot of the notification, its incident's event kinds); ends the read transaction
    at once, since on SQLite an open one would hold the write lock the endpoint needs."""
    from types import SimpleNamespace

    session.expire_all()
    try:
        n = session.get(Notification, notification_id)
        snap = SimpleNamespace(**{c.key: getattr(n, c.key) for c in Notification.__table__.columns})
        events = session.scalars(select(IncidentEvent.kind).where(IncidentEvent.incident_id == n.incident_id)
                                 .order_by(IncidentEvent.id)).all() if n.incident_id else []
        return snap, list(events)
    finally:
        session.rollback()


def test_delivered_receipt_marks_the_right_notification(make_app, session):
    client = make_app(INFOBIP_RECEIPT_TOKEN=RECEIPT_TOKEN).test_client()
    target, _ = sent_page(session, "msg-1")
    other, _ = sent_page(session, "msg-2")
    body = {"results": [delivery_report_entry("msg-1", "DELIVERED")]}
    response = client.post(URL, json=body, headers={HEADER: RECEIPT_TOKEN})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["delivered"] == 1
    n, events = state(session, target)
    assert n.status == "delivered" and n.delivered_at is not None
    assert n.provider_status == "DELIVERED_TO_HANDSET"
    assert events == ["notification_delivered"]
    assert state(session, other)[0].status == "sent"


def test_replay_changes_nothing(make_app, session):
    client = make_app(INFOBIP_RECEIPT_TOKEN=RECEIPT_TOKEN).test_client()
    nid, _ = sent_page(session, "msg-r")
    body = {"results": [delivery_report_entry("msg-r", "DELIVERED")]}
    assert client.post(URL, json=body, headers={HEADER: RECEIPT_TOKEN}).get_json()["delivered"] == 1
    first, events_before = state(session, nid)
    delivered_at, updated_at = first.delivered_at, first.updated_at
    again = client.post(URL, json=body, headers={HEADER: RECEIPT_TOKEN})
    assert again.status_code == 200 and again.get_json()["delivered"] == 0
    assert again.get_json()["unchanged"] == 1
    # A late failure report after delivery does not flip it either.
    late = {"results": [delivery_report_entry("msg-r", "UNDELIVERABLE")]}
    assert client.post(URL, json=late, headers={HEADER: RECEIPT_TOKEN}).get_json()["undeliverable"] == 0
    n, events = state(session, nid)
    assert (n.status, n.delivered_at, n.updated_at) == ("delivered", delivered_at, updated_at)
    assert events == events_before == ["notification_delivered"]


def test_undeliverable_keeps_the_providers_error(make_app, session):
    client = make_app().test_client()    # no token configured: receipts are accepted without one
    nid, _ = sent_page(session, "msg-u")
    response = client.post(URL, json={"results": [delivery_report_entry("msg-u", "UNDELIVERABLE")]})
    assert response.status_code == 200 and response.get_json()["undeliverable"] == 1
    n, events = state(session, nid)
    assert n.status == "undeliverable"
    assert "UNDELIVERABLE_NOT_DELIVERED" in n.last_error and "EC_ABSENT_SUBSCRIBER" in n.last_error
    assert events == ["notification_undeliverable"]


def test_wrong_or_missing_token_is_401_and_changes_nothing(make_app, session):
    client = make_app(INFOBIP_RECEIPT_TOKEN=RECEIPT_TOKEN).test_client()
    nid, _ = sent_page(session, "msg-t")
    body = {"results": [delivery_report_entry("msg-t", "DELIVERED")]}
    for headers in ({HEADER: "wrong-token"}, {}, {HEADER: RECEIPT_TOKEN + "x"}):
        response = client.post(URL, json=body, headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert RECEIPT_TOKEN not in response.get_data(as_text=True)
    n, events = state(session, nid)
    assert n.status == "sent" and events == []


def test_unknown_ids_are_counted_and_ignored(make_app, session):
    client = make_app().test_client()
    nid, _ = sent_page(session, "msg-k")
    body = {"results": [delivery_report_entry("nobody-1"), delivery_report_entry("msg-k"),
                        delivery_report_entry("nobody-2", "UNDELIVERABLE"), {"status": {}}]}
    result = client.post(URL, json=body).get_json()
    assert result == {"received": 4, "delivered": 1, "undeliverable": 0, "unchanged": 0, "unknown": 2,
                      "invalid": 1}
    assert state(session, nid)[0].status == "delivered"


def test_pending_report_only_notes_the_status(make_app, session):
    client = make_app().test_client()
    nid, _ = sent_page(session, "msg-p")
    client.post(URL, json={"results": [delivery_report_entry("msg-p", "PENDING")]})
    n, events = state(session, nid)
    assert n.status == "sent" and n.provider_status == "PENDING_WAITING_DELIVERY" and events == []


def test_receipt_for_a_test_page_without_incident(make_app, session):
    client = make_app().test_client()
    nid, _ = sent_page(session, "msg-test", incident=False)
    assert client.post(URL, json={"results": [delivery_report_entry("msg-test")]}).get_json()["delivered"] == 1
    assert state(session, nid)[0].status == "delivered"


def test_bad_bodies_are_4xx_and_change_nothing(make_app, session):
    client = make_app().test_client()
    nid, _ = sent_page(session, "msg-b")
    for data in ("not json", "[]", '{"results": "x"}', '{"nope": 1}', ""):
        response = client.post(URL, data=data, content_type="application/json")
        assert 400 <= response.status_code < 500, (data, response.status_code)
        assert "error" in response.get_json()
    assert state(session, nid)[0].status == "sent"
    assert session.scalar(select(func.count()).select_from(IncidentEvent)) == 0
    session.rollback()
