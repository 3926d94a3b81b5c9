"""Simultaneous acknowledges over real sockets: exactly one wins, the other gets 409."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import requests
from sqlalchemy import func, select

from pagerpal_core.models import Incident, IncidentEvent
from pagerpal_web.extensions import db
from tests.factories import PASSWORD

ROUNDS = 4


def test_concurrent_acknowledges_give_one_event_and_one_409(app, live_server, make_account):
    people = [make_account(role="responder") for _ in range(2)]
    with app.app_context():
        now = datetime.now(UTC)
        incident_ids = []
        for n in range(ROUNDS):
            incident = Incident(title=f"Race {n}", external_id=f"race-{n}", severity="critical",
                                status="triggered", created_at=now, updated_at=now, last_seen_at=now)
            db.session.add(incident)
            db.session.flush()
            incident_ids.append(incident.id)
        db.session.commit()

    for incident_id in incident_ids:
        barrier = threading.Barrier(len(people), timeout=10)
        answers: dict[int, requests.Response] = {}

        def acknowledge(i: int, url=f"{live_server.url}/api/v1/incidents/{incident_id}", barrier=barrier,
                        answers=answers) -> None:
            session = requests.Session()
            session.auth = (people[i].email, PASSWORD)
            session.get(url, timeout=10)  # warm the credential cache, so both posts start level
            barrier.wait()
            answers[i] = session.post(f"{url}/acknowledge", json={}, timeout=30)

        threads = [threading.Thread(target=acknowledge, args=(i,)) for i in range(len(people))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        statuses = sorted(r.status_code for r in answers.values())
        assert statuses == [200, 409], [r.text for r in answers.values()]
        loser = next(r for r in answers.values() if r.status_code == 409)
        assert loser.json()["error"]["code"] == "conflict"
        assert "acknowledged" in loser.json()["error"]["message"]
        winner = next(i for i, r in answers.items() if r.status_code == 200)
        with app.app_context():
            events = db.session.scalar(select(func.count(IncidentEvent.id)).where(
                IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "acknowledged"))
            incident = db.session.get(Incident, incident_id)
            assert events == 1
            assert incident.status == "acknowledged" and incident.acknowledged_by_id == people[winner].id
            db.session.remove()
