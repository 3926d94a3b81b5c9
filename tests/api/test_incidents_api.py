"""Incidents over the API: filters, sorting, keyset pages, detail, actions with acting_as, retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pagerpal_core.models import Incident, Notification
from pagerpal_web.extensions import db

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def make_incident(app):
    def make(title, *, severity="high", status="triggered", minutes=0, **extra):
        with app.app_context():
            at = T0 + timedelta(minutes=minutes)
            incident = Incident(title=title, external_id=title.lower().replace(" ", "-"), severity=severity,
                                status=status, created_at=at, updated_at=at, last_seen_at=at, **extra)
            db.session.add(incident)
            db.session.commit()
            return incident.id
    return make


def ids(response):
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json["items"]]


def test_filters_and_sorting(client, admin, make_incident):
    disk = make_incident("Disk full on db-1", severity="critical", minutes=0)
    cpu = make_incident("CPU high", severity="warning", minutes=10)
    old = make_incident("Old 50% thing", severity="info", status="resolved", minutes=-60)
    net = make_incident("Network flaps", severity="critical", status="acknowledged", minutes=20)
    get = lambda query: ids(client.get(f"/api/v1/incidents?{query}", headers=admin))  # noqa: E731
    assert get("") == [net, cpu, disk, old]                                   # newest first by default
    assert get("sort=created_at") == [old, disk, cpu, net]
    assert get("status=triggered,acknowledged&sort=-severity") == [cpu, net, disk]
    assert get("sort=severity") == [disk, net, cpu, old]                      # critical first, ties by id
    assert get("severity=critical") == [net, disk]
    assert get("text=DISK") == [disk]
    assert get("text=50%25") == [old]                                         # % is literal, not a wildcard
    assert get("since=2025-03-01T12:00:00Z&until=2025-03-01T12:15:00Z") == [cpu, disk]
    assert get("status=open") == get("status=triggered,acknowledged")  # the UI's "open" works here too
    for bad in ("status=opened", "severity=huge", "sort=title", "since=noon", "team=x"):
        response = client.get(f"/api/v1/incidents?{bad}", headers=admin)
        assert response.status_code == 422, bad
        assert response.json["error"]["fields"]


def test_sorted_keyset_pages_are_stable_under_inserts(client, admin, make_incident):
    made = [make_incident(f"Incident {n}", severity=("critical", "info")[n % 2], minutes=n) for n in range(7)]

    def walk(query: str, insert_title: str) -> list[int]:
        first = client.get(f"/api/v1/incidents?{query}", headers=admin).json
        # Newest and critical: it sorts before the page boundary in both orders below, so
        # the remaining pages must neither repeat nor skip anything because of it.
        make_incident(insert_title, severity="critical", minutes=100)
        seen = [i["id"] for i in first["items"]]
        url = first["next"]
        while url:
            page = client.get(url, headers=admin).json
            seen += [i["id"] for i in page["items"]]
            url = page["next"]
        return seen

    by_severity = [made[n] for n in (0, 2, 4, 6, 1, 3, 5)]  # critical first, ties by id
    assert walk("sort=severity&limit=5", "Meanwhile 1") == by_severity
    newest = ids(client.get("/api/v1/incidents?limit=1", headers=admin))
    assert walk("sort=-created_at&limit=3", "Meanwhile 2") == newest + made[::-1]
    assert client.get("/api/v1/incidents?after=999999", headers=admin).status_code == 422


def test_actions_with_acting_as(client, admin, accounts, make_account, make_incident):
    identity = make_account(password=None, name="Phone-only Pat")     # a responder with no login
    gone = make_account(active=False)
    incident = make_incident("Disk full")
    base = f"/api/v1/incidents/{incident}"
    assert client.post(f"{base}/acknowledge", headers=accounts["viewer"]).status_code == 403
    inactive = client.post(f"{base}/acknowledge", headers=accounts["responder"], json={"acting_as": gone.id})
    assert inactive.status_code == 403 and "inactive" in inactive.json["error"]["fields"]["acting_as"]
    assert client.post(f"{base}/acknowledge", headers=accounts["responder"],
                       json={"acting_as": 987654}).status_code == 404
    assert client.post(f"{base}/acknowledge", headers=accounts["responder"],
                       json={"acting_as": "pat"}).status_code == 422
    acked = client.post(f"{base}/acknowledge", headers=accounts["responder"], json={"acting_as": identity.id})
    assert acked.status_code == 200
    assert acked.json["status"] == "acknowledged" and acked.json["acknowledged_by_id"] == identity.id
    twice = client.post(f"{base}/acknowledge", headers=accounts["responder"])
    assert twice.status_code == 409 and "acknowledged" in twice.json["error"]["message"]

    note = client.post(f"{base}/notes", headers=accounts["responder"], json={"text": "looking at it"})
    assert note.status_code == 201 and note.json["kind"] == "note" and note.headers["Location"]
    assert client.post(f"{base}/notes", headers=accounts["responder"], json={"text": " "}).status_code == 422
    other = make_account()
    reassigned = client.post(f"{base}/reassign", headers=accounts["responder"], json={"user_id": other.id})
    assert reassigned.json["assignee"]["id"] == other.id
    assert client.post(f"{base}/reassign", headers=accounts["responder"], json={}).status_code == 422
    no_policy = client.post(f"{base}/escalate", headers=accounts["responder"])
    assert no_policy.status_code == 409
    resolved = client.post(f"{base}/resolve", headers=accounts["responder"], json={"note": "freed space"})
    assert resolved.json["status"] == "resolved" and resolved.json["resolved_at"].endswith("Z")
    assert client.post(f"{base}/resolve", headers=accounts["responder"]).status_code == 409
    assert client.post(f"{base}/reopen", headers=admin).json["status"] == "triggered"
    assert client.post("/api/v1/incidents/999999/acknowledge", headers=admin).status_code == 404

    detail = client.get(base, headers=accounts["viewer"]).json
    kinds = [event["kind"] for event in detail["timeline"]]
    # No policy: reopening pages nobody, which the timeline flags as unrouted.
    assert kinds == ["acknowledged", "note", "reassigned", "resolved", "reopened", "unrouted"]
    assert detail["timeline"][0]["actor"] == "Phone-only Pat"
    assert "freed space" in detail["timeline"][3]["message"]
    notes = client.get(f"{base}/notes", headers=admin).json["items"]
    assert [n["message"] for n in notes] == ["looking at it"]


def test_notification_retry(app, client, accounts, make_incident, make_account):
    person = make_account()
    incident = make_incident("Paged")
    with app.app_context():
        rows = [Notification(incident_id=incident, user_id=person.id, channel="sms",
                             destination="+14155550123", status=status, subject="s", body="b", attempts=3,
                             last_error="boom")
                for status in ("failed", "pending")]
        db.session.add_all(rows)
        db.session.commit()
        failed, pending = (row.id for row in rows)
    assert client.post(f"/api/v1/notifications/{failed}/retry", headers=accounts["viewer"]).status_code == 403
    retried = client.post(f"/api/v1/notifications/{failed}/retry", headers=accounts["responder"])
    assert retried.status_code == 200
    assert retried.json["status"] == "pending" and retried.json["attempts"] == 0
    refused = client.post(f"/api/v1/notifications/{pending}/retry", headers=accounts["responder"])
    assert refused.status_code == 409 and "pending" in refused.json["error"]["message"]
    listed = client.get(f"/api/v1/notifications?incident={incident}&status=pending",
                        headers=accounts["viewer"])
    assert sorted(ids(listed)) == sorted([failed, pending])
    detail = client.get(f"/api/v1/incidents/{incident}", headers=accounts["viewer"]).json
    assert len(detail["notifications"]) == 2 and detail["timeline"][-1]["kind"] == "notification_retry"
