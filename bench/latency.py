"""Paging latency: "alert accepted" (the 2xx of POST /api/v1/alerts) → "provider request received".

    .venv/bin/python bench/latency.py [--rate 20] [--seconds 15] [--backend both|postgresql|sqlite]

For each backend, on a scratch database: gunicorn (2 workers, deploy/gunicorn.conf.py), one
`pagerpal-worker` process with sending enabled, and a local HTTP server speaking Infobip's SMS
API (tests/fakes/infobip.py) that notes when each page arrives. One on-call person with an
SMS number, a one-level policy, one alert source. Alerts (each a new incident) are fired at a
steady rate from a thread pool; each one's latency is the time from its 2xx response to the
moment the fake provider received the SMS for that incident (same clock, same machine).
Prints count, p50/p95/p99/max in milliseconds. Targets on PostgreSQL at 20 alerts/s:
p50 < 50 ms, p99 < 250 ms. SQLite has no NOTIFY, so its figure follows WORKER_POLL_INTERVAL.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from pagerpal_core.db import make_engine, make_session_factory  # noqa: E402
from pagerpal_core.services.alert_sources import create_alert_source  # noqa: E402
from pagerpal_core.services.escalation_policies import create_policy  # noqa: E402
from pagerpal_core.services.schedules import create_rotation, create_schedule  # noqa: E402
from pagerpal_core.services.users import create_user  # noqa: E402
from pagerpal_core.timeutil import utcnow  # noqa: E402
from tests import dbutil  # noqa: E402
from tests.fakes.infobip import FakeInfobip  # noqa: E402
from tests.ingestion.server import GunicornServer  # noqa: E402

FAKE_KEY = "bench-infobip-key"
INCIDENT_LINK = re.compile(r"/incidents/(\d+)")


class StampingInfobip(FakeInfobip):
    """The fake Infobip, noting the arrival time of the first SMS for each incident."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.arrivals: dict[int, float] = {}

    def handle(self, method, path, headers, raw):
        arrived = time.time()
        match = INCIDENT_LINK.search(raw.decode("utf-8", "replace"))
        if match:
            self.arrivals.setdefault(int(match.group(1)), arrived)
        return super().handle(method, path, headers, raw)


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


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def run(backend: str, rate: float, seconds: float, poll: float) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"pagerpal-latency-{backend}-"))
    pg_name = None
    if backend == "postgresql":
        pg_name = dbutil.create_pg_database(prefix="pagerpal_bench")
        database_url = dbutil.pg_url(pg_name)
        dbutil.upgrade(database_url)
    else:
        database_url = f"sqlite:///{workdir / 'pagerpal.db'}"
        dbutil.upgrade(database_url)
    key = seed(database_url)
    limits = {"ALERT_SOURCE_RATE_LIMIT_CAPACITY": "100000", "ALERT_SOURCE_RATE_LIMIT_REFILL_PER_SECOND": "100000"}
    worker = None
    try:
        with StampingInfobip(api_key=FAKE_KEY) as fake, \
                GunicornServer(database_url, workdir, LOG_LEVEL="WARNING", **limits) as web:
            env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
            env.update(DATABASE_URL=database_url, PAGERPAL_INSTANCE_PATH=str(workdir / "instance"),
                       SECRET_KEY="bench-secret-key-that-is-long-enough-0123456789", ENVIRONMENT="test",
                       LOG_LEVEL="WARNING", WORKER_POLL_INTERVAL=str(poll), NOTIFICATION_SENDING_ENABLED="true",
                       INFOBIP_BASE_URL=fake.url, INFOBIP_API_KEY=FAKE_KEY, INFOBIP_SMS_SENDER="PagerPal")
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
                        accepted[response.json()["incident_id"]] = at
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
            return {"backend": backend, "alerts": total, "accepted": len(accepted), "failed": len(failures),
                    "paged": len(latencies), "latencies": latencies}
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        if pg_name:
            dbutil.drop_pg_database(pg_name)


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
