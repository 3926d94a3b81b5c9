"""Routing under real concurrency on PostgreSQL: threads with their own connections.

Each test lets one transaction hold its locks for a moment before committing, so the
other really runs while it is open. Without the incident row lock (or SKIP LOCKED) these
tests see two acknowledges, pages queued after an acknowledge, or a level paged twice.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from pagerpal_core.db import make_engine, make_session_factory
from pagerpal_core.models import Incident, IncidentEvent, Notification, User
from pagerpal_core.services.escalation import run_escalation_step
from pagerpal_core.services.incidents import acknowledge_incident
from pagerpal_core.services.paging import page_user
from tests.core.routing_setup import BASE_URL, T0, make_world, open_incident

pytestmark = pytest.mark.postgres_only
HOLD = 0.3  # seconds a transaction keeps its locks before committing
DUE = T0 + timedelta(minutes=11)


@pytest.fixture
def factory(pg_database_url):
    engine = make_engine(pg_database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def world(factory):
    with factory() as session:
        world = make_world(session)
        incident_ids = [open_incident(session, world.source, external_id=f"alert-{i}").id for i in range(6)]
        session.commit()
        return world, incident_ids


def run_threads(*targets) -> list:
    """Run each callable in its own thread; return what each returned (or raised)."""
    results: list = [None] * len(targets)

    def wrap(i, target):
        try:
            results[i] = target()
        except Exception as exc:  # reported to the test, which asserts on it
            results[i] = exc

    threads = [threading.Thread(target=wrap, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a worker thread hung"
    return results


def count(factory, query) -> int:
    with factory() as session:
        return session.scalar(query)


def test_double_acknowledge_gives_one_event(factory, world):
    w, incident_id = world[0], world[1][0]
    barrier = threading.Barrier(2, timeout=10)

    def acknowledge(user_id):
        with factory() as session:
            incident = session.get(Incident, incident_id)
            user = session.get(User, user_id)
            assert incident.status == "triggered"  # both start from the same state
            barrier.wait()
            acknowledge_incident(session, incident, actor=user, now=T0 + timedelta(minutes=1))
            time.sleep(HOLD)
            session.commit()
            return "ok"

    results = run_threads(lambda: acknowledge(w.ada.id), lambda: acknowledge(w.ben.id))
    assert sorted(type(r).__name__ if isinstance(r, Exception) else r for r in results) == ["Conflict", "ok"]
    assert count(factory, select(func.count(IncidentEvent.id)).where(
        IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "acknowledged")) == 1


def test_acknowledge_holding_the_row_makes_the_step_skip_it(factory, world):
    _, incident_ids = world
    incident_id = incident_ids[0]
    locked = threading.Event()

    def acknowledge():
        with factory() as session:
            acknowledge_incident(session, session.get(Incident, incident_id), actor="someone", now=DUE)
            locked.set()
            time.sleep(HOLD)
            session.commit()

    def step():
        assert locked.wait(10)
        with factory() as session:
            processed = run_escalation_step(session, now=DUE, base_url=BASE_URL)
            session.commit()
            return processed

    results = run_threads(acknowledge, step)
    assert results[0] is None
    assert results[1] == 5  # every due incident except the one being acknowledged
    with factory() as session:
        assert run_escalation_step(session, now=DUE + timedelta(hours=1), base_url=BASE_URL) == 5
        session.rollback()
        levels = session.scalars(select(Notification.escalation_level).where(
            Notification.incident_id == incident_id)).all()
        statuses = set(session.scalars(select(Notification.status).where(Notification.incident_id == incident_id)))
    assert levels == [1, 1] and statuses == {"cancelled"}


def test_step_holding_the_row_then_acknowledge_cancels_its_pages(factory, world):
    _, incident_ids = world
    incident_id = incident_ids[0]
    claimed = threading.Event()

    def step():
        with factory() as session:
            processed = run_escalation_step(session, now=DUE, base_url=BASE_URL)
            claimed.set()
            time.sleep(HOLD)
            session.commit()
            return processed

    def acknowledge():
        assert claimed.wait(10)
        with factory() as session:
            incident = session.get(Incident, incident_id)
            acknowledge_incident(session, incident, actor="someone", now=DUE)
            session.commit()
            return incident.current_level

    results = run_threads(step, acknowledge)
    # The acknowledge waited for the step's commit, then saw level 2 and cancelled its page.
    assert results == [6, 2]
    with factory() as session:
        rows = session.execute(select(Notification.escalation_level, Notification.status).where(
            Notification.incident_id == incident_id).order_by(Notification.id)).all()
        assert run_escalation_step(session, now=DUE + timedelta(hours=1), base_url=BASE_URL) == 5
        session.rollback()
    assert [tuple(r) for r in rows] == [(1, "cancelled"), (1, "cancelled"), (2, "cancelled")]


def test_acknowledge_racing_steps_never_leaves_a_pending_page(factory, world):
    """Many unsynchronised ack/step races: whatever the order, no page is pending afterwards."""
    _, incident_ids = world
    for incident_id in incident_ids:
        barrier = threading.Barrier(2, timeout=10)

        def acknowledge(incident_id=incident_id, barrier=barrier):
            with factory() as session:
                incident = session.get(Incident, incident_id)
                barrier.wait()
                acknowledge_incident(session, incident, actor="someone", now=DUE)
                session.commit()

        def step(barrier=barrier):
            with factory() as session:
                barrier.wait()
                run_escalation_step(session, now=DUE, base_url=BASE_URL, limit=1)
                session.commit()

        results = run_threads(acknowledge, step)
        assert results == [None, None]
        assert count(factory, select(func.count(Notification.id)).where(
            Notification.incident_id == incident_id, Notification.status == "pending")) == 0


def test_two_escalation_steps_at_once_page_each_level_once(factory, world):
    _, incident_ids = world
    barrier = threading.Barrier(2, timeout=10)

    def step():
        with factory() as session:
            barrier.wait()
            processed = run_escalation_step(session, now=DUE, base_url=BASE_URL)
            time.sleep(HOLD)
            session.commit()
            return processed

    results = run_threads(step, step)
    assert sorted(results)[0] >= 0 and sum(results) == len(incident_ids)
    with factory() as session:
        for incident_id in incident_ids:
            level2 = session.scalars(select(Notification.channel).where(
                Notification.incident_id == incident_id, Notification.escalation_level == 2)).all()
            escalations = session.scalar(select(func.count(IncidentEvent.id)).where(
                IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "escalated"))
            assert (level2, escalations) == (["email"], 1)


def test_concurrent_pages_of_one_level_are_queued_once(factory, world):
    """Even without the incident lock, the unique dedup key stops a second copy."""
    w, incident_ids = world
    incident_id = incident_ids[0]
    barrier = threading.Barrier(2, timeout=10)

    def page():
        with factory() as session:
            incident = session.get(Incident, incident_id)
            ben = session.get(User, w.ben.id)
            barrier.wait()
            result = page_user(session, incident, ben, level=2, now=DUE, base_url=BASE_URL)
            time.sleep(HOLD)
            session.commit()
            return (len(result.notification_ids), result.already_queued)

    results = run_threads(page, page)
    assert sorted(results) == [(0, 1), (1, 0)]
    assert count(factory, select(func.count(Notification.id)).where(
        Notification.incident_id == incident_id, Notification.escalation_level == 2)) == 1
