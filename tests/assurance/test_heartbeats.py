"""Heartbeat monitors: a missed ping opens exactly one incident, the next ping resolves it.

Clock-injected: the worker's real steps run through `run_cycle(ctx, now)`, pings go through
the core service with a chosen `now`.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from pagerpal_core.errors import Conflict, Invalid, NotFound, RateLimited
from pagerpal_core.models import HeartbeatMonitor, Incident, Notification
from pagerpal_core.services.heartbeats import (
    PING_BUCKET_CAPACITY,
    create_heartbeat,
    delete_heartbeat,
    ping_heartbeat,
    update_heartbeat,
)
from pagerpal_worker.loop import run_cycle
from tests.core.routing_setup import T0, event_kinds, make_world
from tests.worker.conftest import read


def _monitor(session, **extra):
    world = make_world(session)
    issued = create_heartbeat(session, name="nightly-backup", interval_seconds=3600, grace_seconds=600,
                              escalation_policy_id=world.policy.id, now=T0, **extra)
    session.commit()
    return world, issued


def _incidents(session):
    return read(session, lambda: list(session.scalars(select(Incident).order_by(Incident.id))))


def test_missed_heartbeat_opens_one_incident_and_the_next_ping_resolves_it(session, make_ctx):
    world, issued = _monitor(session)
    ctx = make_ctx()
    # A new monitor expects nothing until its first ping.
    run_cycle(ctx, T0 + timedelta(days=2))
    assert _incidents(session) == []

    ping_heartbeat(session, issued.token, now=T0.replace(hour=2, minute=10) + timedelta(days=3))
    session.commit()
    last_ping = T0.replace(hour=2, minute=10) + timedelta(days=3)
    # Within interval + grace: nothing happens.
    run_cycle(ctx, last_ping + timedelta(seconds=3600 + 600))
    assert _incidents(session) == []

    late = last_ping + timedelta(seconds=3600 + 601)
    for i in range(4):  # several cycles past the deadline still make one incident
        run_cycle(ctx, late + timedelta(seconds=10 * i))
    incidents = _incidents(session)
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident.title == "Heartbeat 'nightly-backup' missed: last ping 02:10 UTC"
    assert incident.status == "triggered" and incident.policy_id == world.policy.id
    assert incident.alert_source_id is None and incident.external_id == f"heartbeat-{issued.monitor.id}"
    # Paged through the policy like any alert: level 1 (the schedule: Ada) has outbox rows.
    pages = read(session, lambda: session.scalar(select(func.count()).select_from(Notification)
                                                 .where(Notification.incident_id == incident.id)))
    assert pages >= 1
    assert read(session, lambda: event_kinds(session, incident))[:2] == ["triggered", "paged"]
    monitor = read(session, lambda: session.get(HeartbeatMonitor, issued.monitor.id))
    assert monitor.state == "down" and monitor.incident_id == incident.id

    ping_heartbeat(session, issued.token, now=late + timedelta(minutes=5))
    session.commit()
    incident = read(session, lambda: session.get(Incident, incident.id))
    assert incident.status == "resolved"
    assert "heartbeat_ping" in read(session, lambda: event_kinds(session, incident))
    monitor = read(session, lambda: session.get(HeartbeatMonitor, issued.monitor.id))
    assert monitor.state == "up" and monitor.expected_by == late + timedelta(minutes=5, seconds=4200)
    # Quiet again later: a second silence opens a second incident (one per silence).
    run_cycle(ctx, late + timedelta(minutes=5, seconds=4201))
    assert len(_incidents(session)) == 2


def test_ping_with_a_wrong_token_is_not_found_and_writes_nothing(session):
    _, issued = _monitor(session)
    before = read(session, lambda: session.get(HeartbeatMonitor, issued.monitor.id).updated_at)
    for token in ("pph_wrong", issued.token[:-1] + "x", "", None, "ppk_" + issued.token[4:], "x" * 500):
        with pytest.raises(NotFound):
            ping_heartbeat(session, token, now=T0)
        session.rollback()
    monitor = read(session, lambda: session.get(HeartbeatMonitor, issued.monitor.id))
    assert monitor.ping_count == 0 and monitor.last_ping_at is None and monitor.updated_at == before
    assert monitor.token_hash != issued.token and issued.token[-4:] == monitor.token_suffix


def test_pings_are_rate_limited_per_monitor(session):
    world, issued = _monitor(session)
    other = create_heartbeat(session, name="hourly-sync", interval_seconds=60, escalation_policy_id=world.policy.id,
                             now=T0)
    session.commit()
    for _ in range(PING_BUCKET_CAPACITY):
        ping_heartbeat(session, issued.token, now=T0)
        session.commit()
    with pytest.raises(RateLimited) as info:
        ping_heartbeat(session, issued.token, now=T0)
    session.rollback()
    assert info.value.retry_after >= 1
    assert read(session, lambda: session.get(HeartbeatMonitor, issued.monitor.id).ping_count) == PING_BUCKET_CAPACITY
    ping_heartbeat(session, other.token, now=T0)  # another monitor has its own bucket
    ping_heartbeat(session, issued.token, now=T0 + timedelta(seconds=6))  # refilled
    session.commit()


def test_bad_input_names_each_field(session):
    world = make_world(session)
    with pytest.raises(Invalid) as info:
        create_heartbeat(session, name=" ", interval_seconds=9, grace_seconds=-1, escalation_policy_id=999999,
                         now=T0)
    assert set(info.value.fields) == {"name", "interval_seconds", "grace_seconds", "escalation_policy_id"}
    with pytest.raises(Invalid) as info:
        create_heartbeat(session, name="x", interval_seconds=31 * 86400 + 1, escalation_policy_id=world.policy.id,
                         now=T0)
    assert set(info.value.fields) == {"interval_seconds"}
    with pytest.raises(Invalid) as info:
        create_heartbeat(session, name="x", interval_seconds="60", grace_seconds=True,
                         escalation_policy_id="1", now=T0)
    assert set(info.value.fields) == {"interval_seconds", "grace_seconds", "escalation_policy_id"}
    issued = create_heartbeat(session, name="x", interval_seconds=10, escalation_policy_id=world.policy.id, now=T0)
    with pytest.raises(Conflict):
        create_heartbeat(session, name="x", interval_seconds=10, escalation_policy_id=world.policy.id, now=T0)
    with pytest.raises(Invalid) as info:
        update_heartbeat(session, issued.monitor, interval_seconds=0, now=T0)
    assert set(info.value.fields) == {"interval_seconds"}
    ping_heartbeat(session, issued.token, now=T0)
    update_heartbeat(session, issued.monitor, interval_seconds=120, grace_seconds=30, now=T0)
    assert issued.monitor.expected_by == T0 + timedelta(seconds=150)
    delete_heartbeat(session, issued.monitor)
    assert session.scalar(select(func.count()).select_from(HeartbeatMonitor)) == 0
