"""PostgreSQL restarted under a running worker: it recovers by itself and loses nothing.

The restart briefly drops every connection to the shared test server, so this is marked
`serial`: `make test` runs it alone after the parallel pass. It waits for pg_isready before
it ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections import Counter

import pytest

from pagerpal_core.db import make_engine, make_session_factory
from tests.worker.conftest import notification_ids_received, queue_pages, read, status_counts, wait_until, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.postgres_only, pytest.mark.timeout(240)]


def local_cluster() -> tuple[str, str] | None:
    """(version, name) of the local cluster on port 5432, when this process may restart it."""
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster") or not shutil.which("pg_lsclusters"):
        return None
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=30).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "5432":
            return parts[0], parts[1]
    return None


def wait_for_postgres(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"], timeout=10).returncode == 0:
            return
        time.sleep(0.2)
    pytest.fail("PostgreSQL did not come back after the restart")


def test_worker_recovers_from_a_postgres_restart(pg_database_url, tmp_path, fake_infobip, start_worker):
    cluster = local_cluster()
    if cluster is None:
        pytest.skip("needs root and the local pg_ctlcluster-managed server on port 5432")
    engine = make_engine(pg_database_url)
    session = make_session_factory(engine)()
    try:
        fake_infobip.plan(None, hang=0.02, count=None)
        worker = start_worker(worker_env(pg_database_url, tmp_path / "instance", fake_infobip.url,
                                         NOTIFICATION_LEASE_SECONDS=4))
        worker.wait_for_log("leading")
        ids = queue_pages(session, None, 300)
        wait_until(lambda: len(fake_infobip.requests) >= 30, 60, message="sending under way")
        try:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "restart", "-m", "fast"],
                           check=True, timeout=90, capture_output=True)
        finally:
            wait_for_postgres()
        assert worker.proc.poll() is None, "the worker died with the database"
        # New work after the restart is picked up too.
        session.rollback()
        ids += queue_pages(session, None, 50, first_number=15560000000)
        wait_until(lambda: read(session, lambda: status_counts(session)).get("sent") == 350, 120,
                   interval=0.5, message="all 350 pages sent after the restart")
        received = Counter(notification_ids_received(fake_infobip))
        assert set(received) == set(ids), "a page was lost"
        duplicates = sum(n - 1 for n in received.values())
        print(f"\nPostgreSQL restart: {duplicates} duplicate page(s); "
              f"leadership taken {len(worker.logged('leading'))} times")
        assert len(worker.logged("leading")) >= 2  # lost with the server, then taken again
        worker.signal(signal.SIGTERM)
        assert worker.wait(15) == 0
    finally:
        session.close()
        engine.dispose()
        wait_for_postgres()
