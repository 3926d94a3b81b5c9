"""The real `pagerpal-worker` as subprocesses: failover, exactly-once, retries, clean shutdown."""

from __future__ import annotations

import signal
import socket
from collections import Counter

import pytest
from sqlalchemy import select

from pagerpal_core.models import JobStatus, Notification
from pagerpal_core.services.notifications import retry_notification
from pagerpal_core.timeutil import utcnow
from tests.worker.conftest import (
    load,
    make_incident,
    notification_ids_received,
    queue_pages,
    read,
    status_counts,
    wait_until,
    worker_env,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def counts(session):
    return read(session, lambda: status_counts(session))


def stop_all(*workers, timeout=15):
    for worker in workers:
        worker.signal(signal.SIGTERM)
    return [worker.wait(timeout) for worker in workers]


def test_two_workers_send_each_page_exactly_once(database_url, tmp_path, session, fake_infobip, start_worker):
    """One leads and sends every page once; the other stands by and shows as a standby in the
    job rows (what `check` and the jobs page read), next to the leader's pid."""
    ids = queue_pages(session, None, 200)
    env = worker_env(database_url, tmp_path / "instance", fake_infobip.url)
    first, second = start_worker(env, "first"), start_worker(env, "second")
    wait_until(lambda: counts(session).get("sent") == 200, 120, interval=0.25, message="200 pages sent")
    received = Counter(notification_ids_received(fake_infobip))
    assert set(received) == set(ids)
    assert max(received.values()) == 1, "a page reached the provider twice"
    leaders = [w for w in (first, second) if w.logged("leading")]
    assert len(leaders) == 1
    leader = leaders[0]
    standby = second if leader is first else first
    assert standby.logged("another worker leads; standing by")

    def job():
        row = read(session, lambda: session.scalars(select(JobStatus).where(
            JobStatus.name == "notification_retry")).one_or_none())
        return row if row is not None and any(k.endswith(f":{standby.pid}") for k in row.standby_instances) \
            else None

    row = wait_until(job, 30, interval=0.25, message="the standby on the job row")
    assert row.leader_pid == leader.pid
    assert stop_all(first, second) == [0, 0]


def test_kill_9_of_the_leader_hands_over_to_the_standby(database_url, tmp_path, session, fake_infobip,
                                                         start_worker):
    # Every request takes a moment, so the kill lands with sends in flight.
    fake_infobip.plan(None, hang=0.03, count=None)
    env = worker_env(database_url, tmp_path / "instance", fake_infobip.url, NOTIFICATION_LEASE_SECONDS=3)
    leader = start_worker(env, "leader")
    leader.wait_for_log("leading")
    standby = start_worker(env, "standby")
    standby.wait_for_log("another worker leads; standing by")
    ids = queue_pages(session, None, 250)
    wait_until(lambda: len(fake_infobip.requests) >= 80, 60, message="80 pages sent before the kill")
    leader.signal(signal.SIGKILL)
    leader.wait(10)
    standby.wait_for_log("leading", timeout=30)
    wait_until(lambda: counts(session).get("sent") == 250, 120, interval=0.25, message="all 250 pages sent")
    received = Counter(notification_ids_received(fake_infobip))
    assert set(received) == set(ids), "a page was lost"
    duplicates = sum(n - 1 for n in received.values())
    recovered = sum(line["count"] for line in standby.logged("recovered notifications whose lease expired"))
    print(f"\nkill -9 failover: {duplicates} duplicate page(s), {recovered} lease(s) recovered")
    # Only the leader's last claim batch can be in flight: 8 threads × (lease 3 s // (timeout 1 s + 1)).
    assert recovered <= 8
    # Every request that reached the provider is an attempt on its row: a page sent twice is
    # one the kill interrupted (or a send that timed out on a loaded machine), never a page
    # the standby took while the leader still held it.
    attempts = dict(read(session, lambda: session.execute(
        select(Notification.id, Notification.attempts).where(Notification.id.in_(ids))).all()))
    assert all(received[nid] <= attempts[nid] for nid in ids)
    assert stop_all(standby) == [0]


def test_provider_500_and_timeouts_retry_then_exhaust_then_manual_retry(database_url, tmp_path, session,
                                                                        fake_infobip, start_worker):
    incident = make_incident(session)
    failing, hanging = queue_pages(session, incident, 2)
    numbers = {failing: "15550000000", hanging: "15550000001"}
    fake_infobip.plan(500, to=numbers[failing], count=None)
    fake_infobip.plan(None, hang=3, to=numbers[hanging], count=None)  # longer than the 1 s timeout
    env = worker_env(database_url, tmp_path / "instance", fake_infobip.url, NOTIFICATION_MAX_ATTEMPTS=3)
    worker = start_worker(env)
    wait_until(lambda: counts(session).get("exhausted") == 2, 60, interval=0.25, message="both exhausted")
    received = Counter(notification_ids_received(fake_infobip))
    assert received == {failing: 3, hanging: 3}
    rows = {nid: load(session, Notification, nid) for nid in (failing, hanging)}
    assert "500" in rows[failing].last_error and rows[failing].attempts == 3
    assert "timed out" in rows[hanging].last_error and rows[hanging].attempts == 3

    fake_infobip.clear()  # the provider recovers; an operator retries both pages
    for nid in (failing, hanging):
        retry_notification(session, rows[nid], actor="ops", now=utcnow())
    session.commit()
    wait_until(lambda: counts(session).get("sent") == 2, 30, interval=0.25, message="retried pages sent")
    assert Counter(notification_ids_received(fake_infobip)) == {failing: 4, hanging: 4}
    assert stop_all(worker) == [0]


def test_sigterm_finishes_in_flight_sends_and_leaves_nothing_sending(database_url, tmp_path, session,
                                                                     fake_infobip, start_worker):
    notify_path = str(tmp_path / "notify.sock")
    systemd_socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd_socket.bind(notify_path)
    systemd_socket.settimeout(10)
    try:
        fake_infobip.plan(None, hang=0.5, count=None)  # slow but inside the 1 s timeout
        queue_pages(session, None, 100)
        worker = start_worker(worker_env(database_url, tmp_path / "instance", fake_infobip.url,
                                         NOTIFY_SOCKET=notify_path))
        wait_until(lambda: len(fake_infobip.requests) >= 10, 60, message="sends in flight")
        worker.signal(signal.SIGTERM)
        assert worker.wait(10) == 0
        after = counts(session)
        assert after.get("sending", 0) == 0
        assert after.get("sent", 0) + after.get("pending", 0) == 100
        assert after.get("sent", 0) == len(fake_infobip.requests)  # every started send was recorded
        states = []
        while True:
            try:
                states.append(systemd_socket.recv(200).decode())
            except TimeoutError:
                break
            if states[-1] == "STOPPING=1":
                break
        assert states[0] == "READY=1" and "WATCHDOG=1" in states and states[-1] == "STOPPING=1"
    finally:
        systemd_socket.close()
    # The pages put back are sent by the next worker.
    worker = start_worker(worker_env(database_url, tmp_path / "instance", fake_infobip.url))
    fake_infobip.clear()
    wait_until(lambda: counts(session).get("sent") == 100, 60, interval=0.25, message="the rest sent")
    assert max(Counter(notification_ids_received(fake_infobip)).values()) == 1
    assert stop_all(worker) == [0]


@pytest.mark.postgres_only
def test_a_leader_whose_lock_connection_dies_stops_and_another_leads(pg_database_url, tmp_path, fake_infobip,
                                                                    start_worker):
    from sqlalchemy import text

    from pagerpal_core.db import make_engine, make_session_factory

    env = worker_env(pg_database_url, tmp_path / "instance", fake_infobip.url)
    first = start_worker(env, "first")
    first.wait_for_log("leading")
    second = start_worker(env, "second")
    second.wait_for_log("another worker leads; standing by")
    engine = make_engine(pg_database_url)
    try:
        with engine.begin() as conn:
            killed = conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'pagerpal-worker-leader' AND datname = current_database()"
                " AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)")).all()
        assert len(killed) == 1
        first.wait_for_log("leadership lost; stopped work, will try again")
        wait_until(lambda: len(first.logged("leading")) + len(second.logged("leading")) == 2, 30,
                   message="a new leader")
        with make_session_factory(engine)() as session:
            ids = queue_pages(session, None, 50)
            wait_until(lambda: counts(session).get("sent") == 50, 60, interval=0.25, message="pages sent")
        assert Counter(notification_ids_received(fake_infobip)) == Counter(ids)
    finally:
        engine.dispose()
    assert stop_all(first, second) == [0, 0]
