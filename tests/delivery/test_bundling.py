"""Per-destination bundling: a storm of incidents to one phone is a few messages, none lost."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from pagerpal_core.models import Notification
from pagerpal_core.timeutil import utcnow
from pagerpal_worker.loop import run_cycle
from tests.delivery.conftest import page
from tests.factories import make_user
from tests.worker.conftest import make_incident, read


def test_thirty_incidents_in_ten_seconds_to_one_person(session, make_ctx, fake_infobip):
    user = make_user(session, email="storm@acme.test", contacts=[{"channel": "sms", "destination": "+15550100101"}])
    session.commit()
    ctx = make_ctx(fake_infobip.url)
    start = utcnow()
    incidents = []
    for i in range(30):
        now = start + timedelta(seconds=i / 3)  # 30 incidents within 10 s
        incident = make_incident(session, title=f"Disk full on db-{i}")
        page(session, incident, user, now=now)
        incidents.append(incident.id)
        if i % 3 == 2:
            run_cycle(ctx, now)
    for second in range(11, 260, 5):
        run_cycle(ctx, start + timedelta(seconds=second))
    texts = [m["text"] for r in fake_infobip.requests for m in r.body["messages"]]
    summaries = [t for t in texts if "more incidents" in t]
    individual = [t for t in texts if "more incidents" not in t]
    assert len(individual) <= 5
    assert 1 <= len(summaries) <= 2
    assert len(texts) < 30
    rows = read(session, lambda: session.scalars(select(Notification).order_by(Notification.id)).all())
    by_id = {r.id: r for r in rows}
    for incident_id in incidents:
        [row] = [r for r in rows if r.incident_id == incident_id]
        if row.status == "bundled":
            summary = by_id[row.bundle_id]
            assert summary.kind == "summary" and summary.status == "sent"
            assert re.search(rf"#{incident_id}\b", summary.body), summary.body
        else:
            assert row.status == "sent"
    assert all("/mine" in s for s in summaries)


def test_a_summary_of_incidents_all_handled_is_not_sent(session, make_ctx, fake_infobip):
    from pagerpal_core.models import Incident
    from pagerpal_core.services.incidents import acknowledge_incident

    user = make_user(session, email="calm@acme.test", contacts=[{"channel": "sms", "destination": "+15550100102"}])
    session.commit()
    ctx = make_ctx(fake_infobip.url)
    start = utcnow()
    incidents = []
    for i in range(8):
        incident = make_incident(session, title=f"Queue backlog {i}")
        page(session, incident, user, now=start)
        incidents.append(incident.id)
    run_cycle(ctx, start)  # 5 go out, 3 fold into a summary due when the window frees a slot
    for incident_id in incidents:
        acknowledge_incident(session, session.get(Incident, incident_id), actor=user, now=start + timedelta(seconds=5))
    session.commit()
    for second in range(10, 260, 10):
        run_cycle(ctx, start + timedelta(seconds=second))
    texts = [m["text"] for r in fake_infobip.requests for m in r.body["messages"]]
    assert not [t for t in texts if "more incidents" in t]
    summaries = read(session, lambda: session.scalars(select(Notification).where(Notification.kind == "summary")).all())
    assert summaries and all(s.status == "cancelled" for s in summaries)
