"""Paging through chaos: a flaky provider and a leader killed -9 twice, and nothing lost.

    .venv/bin/python bench/chaos.py [--incidents 1000] [--error-rate 0.30] [--hang-rate 0.05]

On a scratch PostgreSQL database (bench/harness.py): `--incidents` new incidents, each paging
one of 50 people by SMS (pages written through pagerpal_core's paging service, the same rows an
alert writes). A local HTTP server answers Infobip's SMS API: `--error-rate` of requests get a
500, `--hang-rate` hang past PROVIDER_TIMEOUT_SECONDS and are then accepted (the worker has
given up: the message went out, and its retry sends it again), the rest are accepted at once.
Two real `pagerpal-worker` processes run; when a third and again when two thirds of the
incidents have been delivered, the leader is killed with SIGKILL (and a fresh standby started).

Prints: incidents delivered at least once (must be all), pages exhausted or failed (must be 0),
and extra messages (provider-accepted messages beyond one per incident) against their bound:
the sends the workers timed out on (the planned hangs, and any reply a busy machine slowed past
the timeout) plus the sends in flight (claimed, outcome not yet recorded) at each kill.
Imports only pagerpal_core and the bench harness, never the test suite; the provider stand-in
is written here.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench.harness import ScratchDatabase, machine, postgres_unavailable_reason  # noqa: E402
from pagerpal_core.db import make_engine, make_session_factory  # noqa: E402
from pagerpal_core.models import Incident, Notification  # noqa: E402
from pagerpal_core.services.paging import page_users  # noqa: E402
from pagerpal_core.services.users import create_user  # noqa: E402
from pagerpal_core.timeutil import utcnow  # noqa: E402

FAKE_KEY = "chaos-infobip-key"
PEOPLE = 50
PROVIDER_TIMEOUT = 2.0
# Each incident's title names its number; the SMS text carries the title.
INCIDENT_NUMBER = re.compile(r"chaos incident (\d+)")


class QuietServer(ThreadingHTTPServer):
    """A killed worker resets its connections: expected here, not worth a traceback."""

    def handle_error(self, request, client_address):
        pass


class FlakyInfobip:
    """Infobip's SMS API, badly: some requests fail with 500, some hang past the caller's timeout."""

    def __init__(self, *, error_rate: float, hang_rate: float, hang_seconds: float, seed: int = 14):
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.accepted: dict[int, int] = {}     # incident number -> messages that went out
        self.errors = self.hangs = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    roll = outer.rng.random()
                if roll < error_rate:
                    with outer.lock:
                        outer.errors += 1
                    self._answer(500, {"requestError": {"serviceException": {"text": "chaos"}}})
                    return
                if roll < error_rate + hang_rate:
                    with outer.lock:
                        outer.hangs += 1
                    time.sleep(hang_seconds)  # the worker timed out; the message still goes out
                outer._deliver(raw)
                self._answer(200, {"messages": [{"messageId": uuid.uuid4().hex, "status": {
                    "groupId": 1, "groupName": "PENDING", "name": "PENDING_ACCEPTED"}}]})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the caller gave up (timeout) or died (kill -9)

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _deliver(self, raw: bytes) -> None:
        numbers = {int(n) for n in INCIDENT_NUMBER.findall(raw.decode("utf-8", "replace"))}
        with self.lock:
            for number in numbers:
                self.accepted[number] = self.accepted.get(number, 0) + 1

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class Worker:
    """A `pagerpal-worker` process whose JSON log lines are read as they come."""

    def __init__(self, env: dict[str, str], cwd: Path, name: str):
        self.name = name
        self.proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "pagerpal-worker")], env=env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.leading = threading.Event()
        self.timeouts = 0   # sends this worker gave up on: the provider may have taken them anyway
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("message") == "leading":
                self.leading.set()
            elif entry.get("message") == "notification send failed" and "timed out" in str(entry.get("error")):
                self.timeouts += 1

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def seed(database_url: str, incidents: int) -> None:
    """PEOPLE people with an SMS number each, and `incidents` triggered incidents, each paging one of them."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            people = [create_user(session, email=f"p{i}@example.test", name=f"Person {i}", role="responder",
                                  password=None, contact_methods=[{"channel": "sms",
                                                                   "destination": f"+1415555{i:04d}"}])
                      for i in range(PEOPLE)]
            session.commit()
            now = utcnow()
            for i in range(incidents):
                incident = Incident(title=f"chaos incident {i}", description="", severity="critical",
                                    status="triggered", details={}, links=[], current_level=1)
                session.add(incident)
                session.flush()
                page_users(session, incident, [people[i % PEOPLE]], level=1, now=now,
                           base_url="https://pagerpal.example.test")
                if i % 100 == 99:
                    session.commit()
            session.commit()
    finally:
        engine.dispose()


def outcome_counts(database_url: str) -> dict[str, int]:
    """Pages by status, read now."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return dict(session.execute(select(Notification.status, func.count()).group_by(Notification.status)).all())
    finally:
        engine.dispose()


def run(incidents: int, error_rate: float, hang_rate: float, deadline_seconds: float) -> dict:
    """The whole experiment on a scratch PostgreSQL database; returns its figures."""
    workdir = Path(tempfile.mkdtemp(prefix="pagerpal-chaos-"))
    with ScratchDatabase("postgresql", workdir) as database, \
            FlakyInfobip(error_rate=error_rate, hang_rate=hang_rate, hang_seconds=PROVIDER_TIMEOUT + 0.5) as fake:
        seed(database.url, incidents)
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
        env.update(DATABASE_URL=database.url, PAGERPAL_INSTANCE_PATH=str(workdir / "instance"),
                   SECRET_KEY="chaos-secret-key-that-is-long-enough-0123456789", ENVIRONMENT="test",
                   LOG_LEVEL="INFO", WORKER_POLL_INTERVAL="0.2", NOTIFICATION_SENDING_ENABLED="true",
                   INFOBIP_BASE_URL=fake.url, INFOBIP_API_KEY=FAKE_KEY, INFOBIP_SMS_SENDER="PagerPal",
                   PROVIDER_TIMEOUT_SECONDS=str(PROVIDER_TIMEOUT), NOTIFICATION_LEASE_SECONDS="10",
                   NOTIFICATION_RETRY_BASE_SECONDS="0.2", NOTIFICATION_RETRY_MAX_SECONDS="2",
                   # One phone gets many pages here: folding them into summaries is not what is measured.
                   PAGES_PER_DESTINATION=str(10 ** 6))
        workers = [Worker(env, workdir, "w1"), Worker(env, workdir, "w2")]
        kills: list[int] = []   # sends in flight (claimed, outcome unrecorded) at each kill
        started = time.monotonic()
        try:
            thresholds = [incidents // 3, 2 * incidents // 3]
            while time.monotonic() - started < deadline_seconds:
                with fake.lock:
                    delivered = len(fake.accepted)
                if thresholds and delivered >= thresholds[0]:
                    thresholds.pop(0)
                    leader = next((w for w in workers if w.alive() and w.leading.is_set()), None)
                    if leader is not None:
                        leader.proc.send_signal(signal.SIGKILL)
                        leader.proc.wait()
                        # In flight at the kill: the rows the dead leader held claimed ('sending'
                        # under its lease). Any of them may have reached the provider before the
                        # kill without its outcome being recorded, so each may go out once more.
                        kills.append(outcome_counts(database.url).get("sending", 0))
                        workers.append(Worker(env, workdir, f"w{len(workers) + 1}"))
                counts = outcome_counts(database.url)
                if delivered >= incidents and not counts.get("pending") and not counts.get("sending"):
                    break
                time.sleep(0.5)
            elapsed = time.monotonic() - started
        finally:
            for worker in workers:
                worker.stop()
        counts = outcome_counts(database.url)
        with fake.lock:
            accepted = dict(fake.accepted)
        return {"incidents": incidents, "delivered": sum(1 for i in range(incidents) if accepted.get(i)),
                "exhausted": counts.get("exhausted", 0) + counts.get("failed", 0),
                "extra": sum(accepted.values()) - len(accepted), "hung": fake.hangs, "errors": fake.errors,
                "timeouts": sum(w.timeouts for w in workers),
                "in_flight_at_kills": kills, "elapsed": elapsed, "statuses": counts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--error-rate", type=float, default=0.30, help="share of requests answered 500")
    parser.add_argument("--hang-rate", type=float, default=0.05, help="share of requests hanging past the timeout")
    parser.add_argument("--deadline", type=float, default=900.0, help="give up after this many seconds")
    args = parser.parse_args()
    problem = postgres_unavailable_reason()
    if problem:
        print(problem)
        return 2
    r = run(args.incidents, args.error_rate, args.hang_rate, args.deadline)
    # A send the worker timed out on may still have gone out (every planned hang, and any reply
    # slowed past the timeout by a busy machine): each can add one message, as can each send
    # in flight when a leader was killed.
    bound = r["timeouts"] + sum(r["in_flight_at_kills"])
    print(f"{r['incidents']} incidents, provider: {args.error_rate:.0%} answered 500 ({r['errors']}), "
          f"{args.hang_rate:.0%} hung past {PROVIDER_TIMEOUT:g}s ({r['hung']}); "
          f"leader killed -9 {len(r['in_flight_at_kills'])}x")
    print(f"  delivered: {r['delivered']}/{r['incidents']}")
    print(f"  exhausted: {r['exhausted']} (must be 0)")
    # Timeouts are counted from the workers' logs; a hang in flight at a kill is in the kill's count.
    print(f"  extra messages: {r['extra']} ≤ bound {bound} (sends the workers timed out on {r['timeouts']} "
          f"[the provider hung {r['hung']}] + in flight at kills {'+'.join(map(str, r['in_flight_at_kills'])) or '0'})")
    print(f"  took {r['elapsed']:.0f} s; pages by status: {r['statuses']}")
    print(f"  machine: {machine()}")
    ok = r["delivered"] == r["incidents"] and r["exhausted"] == 0 and r["extra"] <= bound
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
