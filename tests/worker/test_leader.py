"""Leadership locks, wake-ups and the systemd notify socket, without starting processes."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from sqlalchemy import text

from pagerpal_core.db import make_engine
from pagerpal_core.wakeup import notify_new_work
from pagerpal_worker import systemd
from pagerpal_worker.leader import LeadershipError, PostgresLeader, SqliteLeader, make_leader
from pagerpal_worker.signals import StopFlag


def test_sqlite_lock_admits_one_holder(tmp_path):
    database_url = f"sqlite:///{tmp_path}/pagerpal.db"
    first, second = SqliteLeader(database_url), SqliteLeader(database_url)
    try:
        assert first.try_acquire() is True
        assert second.try_acquire() is False
        assert first.still_leader() and not second.still_leader()
        first.release()
        assert second.try_acquire() is True
    finally:
        first.release()
        second.release()


def test_sqlite_lock_file_replaced_means_leadership_lost(tmp_path):
    database_url = f"sqlite:///{tmp_path}/pagerpal.db"
    leader = SqliteLeader(database_url)
    try:
        assert leader.try_acquire()
        os.unlink(leader.path)
        assert leader.still_leader() is False
    finally:
        leader.release()


@pytest.mark.postgres_only
def test_postgres_lock_admits_one_holder_and_a_dead_connection_frees_it(pg_database_url):
    first, second = PostgresLeader(pg_database_url), PostgresLeader(pg_database_url)
    engine = make_engine(pg_database_url)
    try:
        assert first.try_acquire() is True
        assert second.try_acquire() is False
        assert first.still_leader() is True
        # The leader's connection dies (what a crash or a network cut looks like to the server).
        pid = first.conn.get_backend_pid()
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert first.still_leader() is False
        assert second.try_acquire() is True
        assert second.still_leader() is True
    finally:
        first.release()
        second.release()
        engine.dispose()


def test_unreachable_postgres_is_a_leadership_error():
    leader = PostgresLeader("postgresql+psycopg2://postgres@127.0.0.1:1/nothing", connect_timeout=2)
    with pytest.raises(LeadershipError):
        leader.try_acquire()


@pytest.mark.postgres_only
def test_notify_wakes_the_leader_before_the_poll_timeout(pg_database_url):
    from pagerpal_core.db import make_session_factory

    leader, stop = make_leader(pg_database_url), StopFlag()
    engine = make_engine(pg_database_url)
    try:
        assert leader.try_acquire()
        assert leader.wait(0.05, stop) is False  # nothing pending

        def web_side():
            time.sleep(0.2)
            with make_session_factory(engine)() as session:
                notify_new_work(session)
                session.commit()

        thread = threading.Thread(target=web_side)
        thread.start()
        assert leader.wait(30, stop) is True  # returns on the NOTIFY, long before 30 s
        thread.join()
    finally:
        leader.release()
        engine.dispose()
        stop.close()


def test_stop_interrupts_a_wait(database_url):
    leader, stop = make_leader(database_url), StopFlag()
    try:
        assert leader.try_acquire()
        threading.Timer(0.2, stop.set).start()
        assert leader.wait(30, stop) is False
        assert stop.is_set()
    finally:
        leader.release()
        stop.close()


def test_sd_notify_sends_datagrams(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        monkeypatch.setattr(systemd, "_last_watchdog", 0.0)
        assert systemd.ready() and systemd.watchdog() and systemd.stopping()
        assert [server.recv(100) for _ in range(3)] == [b"READY=1", b"WATCHDOG=1", b"STOPPING=1"]
        assert systemd.watchdog() is False  # pings are spaced at least a second apart
        # Nobody reading: once the queue is full, notify drops the message instead of blocking.
        results = [systemd.notify("STATUS=busy") for _ in range(1000)]
        assert results[0] is True and results[-1] is False
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert systemd.ready() is False
