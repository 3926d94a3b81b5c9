"""Paging latency: "alert accepted" (the 2xx of POST /api/v1/alerts) → "provider request received".

    .venv/bin/python bench/latency.py [--rate 20] [--seconds 15] [--backend both|postgresql|sqlite]

For each backend, on a scratch database (bench/harness.py): gunicorn (2 workers,
deploy/gunicorn.conf.py), one `pagerpal-worker` process with sending enabled, and a local HTTP
server answering Infobip's SMS API that notes when each page arrives. One on-call person with an
SMS number, a one-level policy, one alert source, seeded through pagerpal_core's services.
Alerts (each a new incident) are fired at a steady rate from a thread pool; each one's latency
is the time from its 2xx response to the moment the local provider received the SMS naming that
alert (same clock, same machine). Only pagerpal_core and HTTP are used, never the test suite.
Prints count, p50/p95/p99/max in milliseconds. Targets on PostgreSQL at 20 alerts/s:
p50 < 50 ms, p99 < 250 ms. SQLite has no NOTIFY, so its figure follows WORKER_POLL_INTERVAL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.harness import Gunicorn, ScratchDatabase, percentile  # noqa: E402
from pagerpal_core.db import make_engine, make_session_factory  # noqa: E402
from pagerpal_core.services.alert_sources import create_alert_source  # noqa: E402
from pagerpal_core.services.escalation_policies import create_policy  # noqa: E402
from pagerpal_core.services.schedules import create_rotation, create_schedule  # noqa: E402
from pagerpal_core.services.users import create_user  # noqa: E402
from pagerpal_core.timeutil import utcnow  # noqa: E402

FAKE_KEY = "bench-infobip-key"
# Each alert's title names its number, and the SMS text carries the title: the page for alert i.
ALERT_NUMBER = re.compile(r"bench alert (\d+)")


class StampingInfobip:
    """A local HTTP server that accepts every SMS the way Infobip does and notes when each alert's first arrives."""

    def __init__(self):
        self.arrivals: dict[int, float] = {}
        stamp = self._stamp

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stamp(raw)
                body = json.dumps({"messages": [{"messageId": uuid.uuid4().hex, "status": {
                    "groupId": 1, "groupName": "PENDING", "name": "PENDING_ACCEPTED"}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _stamp(self, raw: bytes) -> None:
        arrived = time.time()
        # A summary SMS (pages bundled for one destination) names several alerts.
        for number in ALERT_NUMBER.findall(raw.decode("utf-8", "replace")):
            self.arrivals.setdefault(int(number), arrived)

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def seed(database_url: str) -> str:
    """One on-call person with SMS, a one-level policy, an alert source; returns its key."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            now = utcnow()
            person = create_user(session, email="oncall@example.test", name="On Call", role="responder",
                                 password=None, contact_methods=[{"channel": "sms", "destination": "+14155550101"}])
            schedule = create_schedule(session, name="primary", timezone="UTC")
            create_rotation(session, schedule, start_date=date(2020, 1, 1), shift_unit="weeks",
                            handoff_time="09:00", participants=[person])
            policy = create_policy(session, name="default", levels=[
                {"delay_minutes": 30, "targets": [{"type": "schedule", "id": schedule.id}]}])
            issued = create_alert_source(session, name="bench", policy_id=policy.id, now=now)
            session.commit()
            return issued.key
    finally:
        engine.dispose()


def run(backend: str, rate: float, seconds: float, poll: float) -> dict:
    """Fire `rate` alerts/s for `seconds` at one backend; each accepted alert's paging latency in ms."""
    workdir = Path(tempfile.mkdtemp(prefix=f"pagerpal-latency-{backend}-"))
    with ScratchDatabase(backend, workdir) as database:
        result = _measure(database.url, workdir, seed(database.url), rate, seconds, poll)
    return {"backend": backend, **result}


def _measure(database_url: str, workdir: Path, key: str, rate: float, seconds: float, poll: float) -> dict:
    worker = None
    try:
        with StampingInfobip() as fake, Gunicorn(database_url, workdir, workers=2) as web:
            env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
            env.update(DATABASE_URL=database_url, PAGERPAL_INSTANCE_PATH=str(workdir / "instance"),
                       SECRET_KEY="bench-secret-key-that-is-long-enough-0123456789", ENVIRONMENT="test",
                       LOG_LEVEL="WARNING", WORKER_POLL_INTERVAL=str(poll), NOTIFICATION_SENDING_ENABLED="true",
                       INFOBIP_BASE_URL=fake.url, INFOBIP_API_KEY=FAKE_KEY, INFOBIP_SMS_SENDER="PagerPal",
                       # Every page goes to the one person: without this, pages beyond the fifth in
                       # two minutes are folded into a summary, and the figure would be the bundle window.
                       PAGES_PER_DESTINATION=str(10 ** 6))
            log = open(workdir / "worker.log", "wb")
            worker = subprocess.Popen([str(ROOT / ".venv" / "bin" / "pagerpal-worker")], env=env, cwd=workdir,
                                      stdout=log, stderr=subprocess.STDOUT)
            time.sleep(2)  # let it take leadership
            accepted: dict[int, float] = {}
            failures = []
            lock = threading.Lock()
            local = threading.local()

            def fire(i: int) -> None:
                http = getattr(local, "http", None) or requests.Session()
                local.http = http
                response = http.post(f"{web.url}/api/v1/alerts", headers={"X-API-Key": key}, timeout=10,
                                     json={"title": f"bench alert {i}", "external_id": f"bench-{i}",
                                           "severity": "critical"})
                at = time.time()
                with lock:
                    if response.status_code in (200, 201) and response.json().get("incident_id"):
                        accepted[i] = at
                    else:
                        failures.append(response.status_code)

            total = int(rate * seconds)
            start = time.monotonic()
            with ThreadPoolExecutor(max_workers=16) as pool:
                for i in range(total):
                    # Steady rate: fire on schedule, whatever earlier requests are doing.
                    delay = start + i / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    pool.submit(fire, i)
            deadline = time.monotonic() + max(10, 3 * poll)
            while time.monotonic() < deadline and not set(accepted) <= set(fake.arrivals):
                time.sleep(0.1)
            latencies = [(fake.arrivals[i] - t) * 1000 for i, t in accepted.items() if i in fake.arrivals]
            return {"alerts": total, "accepted": len(accepted), "failed": len(failures),
                    "paged": len(latencies), "latencies": latencies}
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="alerts per second (default 20)")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to fire (default 15)")
    parser.add_argument("--backend", choices=("both", "postgresql", "sqlite"), default="both")
    parser.add_argument("--poll", type=float, default=1.0, help="WORKER_POLL_INTERVAL (default 1.0)")
    args = parser.parse_args()
    backends = ("postgresql", "sqlite") if args.backend == "both" else (args.backend,)
    print(f"alert accepted → provider request received, {args.rate:g} alerts/s for {args.seconds:g} s, "
          f"poll interval {args.poll:g} s")
    for backend in backends:
        result = run(backend, args.rate, args.seconds, args.poll)
        lat = result["latencies"]
        line = (f"{backend:>10}: {result['paged']}/{result['alerts']} paged "
                f"({result['failed']} rejected)")
        if lat:
            line += (f"  p50 {statistics.median(lat):7.1f} ms  p95 {percentile(lat, 95):7.1f} ms  "
                     f"p99 {percentile(lat, 99):7.1f} ms  max {max(lat):7.1f} ms")
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
