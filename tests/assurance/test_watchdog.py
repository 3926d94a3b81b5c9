"""The escalation watchdog: flags escalation held back, stuck sends and stale heartbeats; pings outside when healthy."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pagerpal_core.models import Incident, Notification
from pagerpal_core.services.watchdog import read_watchdog_report
from pagerpal_worker.loop import run_cycle
from tests.core.routing_setup import T0, make_world, open_incident
from tests.worker.conftest import make_incident, read


class PingServer:
    """A local HTTP server that records each request path; /moved answers with a redirect."""

    def __init__(self):
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.paths.append(self.path)
                if self.path.startswith("/moved"):
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def ping_server():
    with PingServer() as server:
        yield server


def _report(session, now, poll=0.2):
    return read(session, lambda: read_watchdog_report(session, now=now, poll_interval=poll))


def test_watchdog_flags_an_escalation_held_back(session, make_ctx, ping_server):
    world = make_world(session, delay=10)
    incident = open_incident(session, world.source, now=T0)
    session.commit()
    due = T0 + timedelta(minutes=10)
    assert incident.next_escalation_at == due
    incident_id = incident.id  # `read` expires the object; touching it later would hold SQLite's lock
    # The escalation step is held back (switched off); the watchdog runs on its own.
    held = make_ctx(ESCALATION_WORKER_ENABLED="false", WATCHDOG_PING_URL=ping_server.url + "/ping")
    run_cycle(held, due + timedelta(seconds=0.3))  # 0.3 s late: within two poll intervals (0.4 s)
    report = _report(session, due + timedelta(seconds=0.3))
    assert report.healthy and report.overdue_escalations == 0
    assert report.ping == "200" and ping_server.paths == ["/ping"]

    run_cycle(held, due + timedelta(seconds=30))
    report = _report(session, due + timedelta(seconds=30))
    assert not report.healthy
    assert report.overdue_escalations == 1 and report.overdue_incident_ids == [incident_id]
    assert report.oldest_overdue_seconds == pytest.approx(30)
    assert any("overdue for escalation" in p for p in report.problems)
    assert report.ping is None and ping_server.paths == ["/ping"]  # no "all is well" while it is not

    # With escalation running again, the incident moves on and the finding clears.
    ctx = make_ctx(WATCHDOG_PING_URL=ping_server.url + "/ping")
    run_cycle(ctx, due + timedelta(seconds=40))
    assert read(session, lambda: session.get(Incident, incident_id).current_level) == 2
    report = _report(session, due + timedelta(seconds=40))
    assert report.healthy and report.ping == "200" and ping_server.paths == ["/ping", "/ping"]


def test_watchdog_flags_stuck_notifications_and_a_stale_report(session, make_ctx):
    incident = make_incident(session)
    session.add(Notification(incident_id=incident.id, channel="sms", destination="+15550000001",
                             status="sending", lease_expires_at=T0, leased_by="gone:1:abc", dedup_key="stuck-1"))
    session.commit()
    # Lease recovery (the dispatch step) is off, so the row stays stuck.
    ctx = make_ctx(NOTIFICATION_RETRY_WORKER_ENABLED="false")
    run_cycle(ctx, T0 + timedelta(seconds=60))
    report = _report(session, T0 + timedelta(seconds=60))
    assert report.stuck_notifications == 1 and not report.healthy
    # Nobody has written the report for a long time: that is itself the finding.
    later = _report(session, T0 + timedelta(hours=1))
    assert later.report_stale and any("is the worker running" in p for p in later.problems)


def test_watchdog_flags_a_stale_worker_heartbeat(session, make_ctx):
    ctx = make_ctx()
    run_cycle(ctx, T0)  # job_status rows written at T0
    # Only the watchdog runs now: the other steps' heartbeats are an hour old.
    run_cycle(ctx, T0 + timedelta(hours=1), steps=tuple(s for s in _steps() if s.name == "watchdog"))
    report = _report(session, T0 + timedelta(hours=1))
    assert "escalation" in report.stale_jobs and not report.healthy


def test_ping_never_follows_a_redirect(session, make_ctx, ping_server):
    ctx = make_ctx(WATCHDOG_PING_URL=ping_server.url + "/moved")
    run_cycle(ctx, T0)
    assert _report(session, T0).ping == "302"
    assert ping_server.paths == ["/moved"]


def test_unreachable_ping_url_is_recorded_not_raised(session, make_ctx):
    ctx = make_ctx(WATCHDOG_PING_URL="http://127.0.0.1:9/ping")  # discard port: refused
    report = run_cycle(ctx, T0)
    assert "watchdog" not in report.errors
    assert _report(session, T0).ping.startswith("error: ")


def _steps():
    from pagerpal_worker.loop import STEPS

    return STEPS
