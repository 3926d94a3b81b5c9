"""What the ingestion benchmarks share: scratch databases, a gunicorn process, senders, raw ceilings.

The benchmarks use only `pagerpal_core` (to migrate and seed a scratch database) and the
public HTTP API; they never import the test suite.

Raw ceilings write the same rows a minimal correct ingestion needs, straight through the
database driver, one transaction per alert, from the same number of concurrent senders:

    INSERT INTO incidents ... ON CONFLICT (source, external id) WHERE <open> DO NOTHING RETURNING id
    -- a new incident:   INSERT INTO incident_events (its one "triggered" row)
    -- a repeat:         UPDATE incidents SET occurrence_count = occurrence_count + 1, ...
    COMMIT

No HTTP, no parsing, no authentication, no rate limit, no paging. PostgreSQL is driven by
psycopg2; SQLite by the stdlib driver with PagerPal's own pragmas (WAL, synchronous=NORMAL)
and BEGIN IMMEDIATE, as PagerPal runs it.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402

from pagerpal_core.db import make_engine  # noqa: E402
from pagerpal_core.models.incidents import OPEN_INCIDENT_PREDICATE  # noqa: E402
from pagerpal_core.schema import migrations_dir  # noqa: E402

PG_ADMIN_URL = os.environ.get("PAGERPAL_BENCH_POSTGRES_URL",
                              os.environ.get("PAGERPAL_TEST_POSTGRES_URL",
                                             "postgresql+psycopg2://postgres@127.0.0.1:5432/test"))
BACKENDS = ("postgresql", "sqlite")


# --- scratch databases -------------------------------------------------------------------

def _upgrade(url: str) -> None:
    warnings.filterwarnings("ignore", message="Skipped unsupported reflection")
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    engine = make_engine(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    engine.dispose()


class ScratchDatabase:
    """A migrated, empty database for one benchmark run, removed afterwards."""

    def __init__(self, backend: str, workdir: Path):
        self.backend = backend
        self.workdir = Path(workdir)
        self.pg_name: str | None = None
        self.url = ""

    def __enter__(self):
        if self.backend == "postgresql":
            self.pg_name = f"pagerpal_bench_{uuid.uuid4().hex[:12]}"
            self._admin(f'CREATE DATABASE "{self.pg_name}"')
            self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.pg_name
        else:
            self.url = f"sqlite:///{self.workdir / 'bench.db'}"
        _upgrade(self.url)
        return self

    def __exit__(self, *exc):
        if self.pg_name:
            self._admin(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')

    @staticmethod
    def _admin(sql: str) -> None:
        engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text(sql))
        engine.dispose()

    @property
    def sqlite_path(self) -> str:
        return self.url.removeprefix("sqlite:///")

    @property
    def dsn(self) -> str:
        return self.url.replace("postgresql+psycopg2://", "postgresql://")


def postgres_unavailable_reason() -> str | None:
    """None when the benchmark's PostgreSQL answers, else why not."""
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3}, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means "not here"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"


# --- gunicorn ----------------------------------------------------------------------------

def add_serving_arguments(parser) -> None:
    """The options every HTTP ingestion bench shares: backend and gunicorn shape."""
    parser.add_argument("--backend", choices=("both", *BACKENDS), default="both")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--rounds", type=int, default=4,
                        help="slices the raw ceiling and PagerPal take turns on (bench/harness.py: interleaved)")


def chosen_backends(args) -> tuple[str, ...] | None:
    """The backends `args.backend` names, or None (after saying why) when PostgreSQL is asked
    for and not reachable."""
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    if "postgresql" in backends:
        reason = postgres_unavailable_reason()
        if reason:
            print(f"cannot run on PostgreSQL: {reason}", file=sys.stderr)
            return None
    return backends


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn -c deploy/gunicorn.conf.py "pagerpal_web:create_app()"` on a free loopback port."""

    def __init__(self, database_url: str, workdir: Path, *, workers: int = 2, threads: int = 4, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(workdir)
        self.log_path = self.workdir / f"gunicorn-{self.port}.log"
        self.workers = workers
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "ENVIRONMENT": "test",
            "PAGERPAL_INSTANCE_PATH": str(self.workdir / "instance"),
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
            "GUNICORN_MAX_REQUESTS": "0",  # no worker recycling in the middle of a measurement
            "LOG_LEVEL": "WARNING",
            # Benchmarks measure ingestion, not the rate limit.
            "ALERT_SOURCE_RATE_LIMIT_CAPACITY": str(10 ** 9),
            "ALERT_SOURCE_RATE_LIMIT_REFILL_PER_SECOND": str(10 ** 6),
            **{k: str(v) for k, v in env.items()},
        }
        self.process = None

    def __enter__(self):
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
             "pagerpal_web:create_app()"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()[-3000:]}")
            if self._serving_workers() >= self.workers:
                return self
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"gunicorn did not answer within 60 s:\n{self.log()[-3000:]}")

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()

    def _serving_workers(self) -> int:
        # A burst of fresh connections reaches every worker that is accepting (a booting one
        # answers nothing yet); the JSON access log says which process answered each.
        def ping(_):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health", headers={"Connection": "close"})
                conn.getresponse().read()
                conn.close()
            except OSError:
                pass

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(ping, range(8)))
        pids = set()
        for line in self.log().splitlines():
            if line.startswith("{") and '"gunicorn.access"' in line:
                entry = json.loads(line)
                if entry.get("path") == "/health" and entry.get("status") == 200:
                    pids.add(entry.get("pid"))
        return len(pids)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def say_errors(self, last: int = 3) -> None:
        """Print the last error lines of the server's log (why a sender's request failed)."""
        errors = [line for line in self.log().splitlines() if '"level": "error"' in line]
        print("\n".join(errors[-last:]), file=sys.stderr)


# --- senders -----------------------------------------------------------------------------

def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


class Senders:
    """`count` senders made once (their connections open before anything is timed), each on
    its own thread for every batch of alerts it is given."""

    def __init__(self, count: int, make_sender):
        self.sends = [make_sender() for _ in range(count)]

    def run(self, alerts: list[dict]) -> tuple[float, list[float]]:
        """Split `alerts` round-robin over the senders, started together; (elapsed s, latencies s)."""
        count = len(self.sends)
        gate = threading.Barrier(count + 1)

        def sender(index: int) -> list[float]:
            send, mine, latencies = self.sends[index], alerts[index::count], []
            gate.wait()
            for alert in mine:
                t0 = time.perf_counter()
                send(alert)
                latencies.append(time.perf_counter() - t0)
            return latencies

        with ThreadPoolExecutor(max_workers=count) as pool:
            futures = [pool.submit(sender, index) for index in range(count)]
            gate.wait()
            started = time.perf_counter()
            latencies = [latency for future in futures for latency in future.result()]
            return time.perf_counter() - started, latencies

    def close(self) -> None:
        for send in self.sends:
            getattr(send, "close", lambda: None)()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_concurrently(alerts: list[dict], senders: int, make_sender) -> tuple[float, list[float]]:
    """`alerts` sent once by `senders` fresh senders (see Senders.run)."""
    with Senders(senders, make_sender) as group:
        return group.run(alerts)


def interleaved(alerts: list[dict], sides: dict[str, Senders], rounds: int) -> dict[str, tuple[float, list[float]]]:
    """Send `alerts` through every side in `rounds` consecutive slices, taking turns (A B,
    then B A, ...): per side, (elapsed s, latencies s) over all its slices.

    A shared host's speed drifts by a third within minutes; measured one after the other, a
    ceiling and PagerPal would each get a different machine, and their ratio would say more
    about the host than about PagerPal. Taking turns gives both the same machine.
    """
    totals: dict[str, tuple[float, list[float]]] = {name: (0.0, []) for name in sides}
    size = -(-len(alerts) // rounds)
    names = list(sides)
    for turn in range(rounds):
        batch = alerts[turn * size:(turn + 1) * size]
        for name in names if turn % 2 == 0 else names[::-1]:
            elapsed, latencies = sides[name].run(batch)
            totals[name] = (totals[name][0] + elapsed, totals[name][1] + latencies)
    return totals


def http_senders(url: str, key: str, path: str = "/api/v1/alerts"):
    """A sender factory POSTing each alert as JSON over its own keep-alive connection.

    http.client keeps the client's CPU small: it shares the machine with what it measures.
    """
    host, port = url.removeprefix("http://").split(":")
    headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def make_sender():
        state = {"conn": http.client.HTTPConnection(host, int(port), timeout=60)}
        state["conn"].connect()  # now, not inside the first timed request

        def send(alert):
            body = json.dumps(alert).encode()
            for attempt in (1, 2):
                try:
                    state["conn"].request("POST", path, body=body, headers=headers)
                    response = state["conn"].getresponse()
                    data = response.read()
                    break
                except (ConnectionError, http.client.HTTPException):
                    state["conn"].close()  # the server closed an idle keep-alive: reconnect once
                    state["conn"] = http.client.HTTPConnection(host, int(port), timeout=60)
                    if attempt == 2:
                        raise
            if response.status not in (200, 201, 202):
                raise RuntimeError(f"HTTP {response.status}: {data[:300]!r}")
        send.close = lambda: state["conn"].close()
        return send

    return make_sender


# --- raw ceilings ------------------------------------------------------------------------

_INSERT = f"""
    INSERT INTO incidents (alert_source_id, external_id, title, description, severity, status, details, links,
                           current_level, escalation_round, page_generation, unrouted, occurrence_count,
                           last_seen_at, repeats_unlogged, created_at, updated_at, assignment_pinned)
    VALUES ({{source}}, {{external_id}}, {{title}}, '', 'high', 'triggered', {{details}}, '[]',
            0, 0, 0, false, 1, {{now}}, 0, {{now}}, {{now}}, false)
    ON CONFLICT (alert_source_id, external_id) WHERE {OPEN_INCIDENT_PREDICATE} DO NOTHING
    RETURNING id
"""
_REPEAT = f"""
    UPDATE incidents SET occurrence_count = occurrence_count + 1, last_seen_at = {{now}},
                         repeats_unlogged = repeats_unlogged + 1, updated_at = {{now}}
     WHERE alert_source_id = {{source}} AND external_id = {{external_id}} AND {OPEN_INCIDENT_PREDICATE}
"""
_EVENT = """
    INSERT INTO incident_events (incident_id, created_at, kind, actor_source_id, actor_label, message, detail)
    VALUES ({id}, {now}, 'triggered', {source}, 'source bench', {title}, {details})
"""


def _sql(template: str, style: str) -> str:
    names = ("source", "external_id", "title", "details", "id")
    marks = {name: (f"%({name})s" if style == "pyformat" else f":{name}") for name in names}
    marks["now"] = "now()" if style == "pyformat" else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    return template.format(**marks)


def raw_senders(db: ScratchDatabase, source_id: int):
    """A sender factory writing each alert straight to the database (see the module docstring)."""
    style = "pyformat" if db.backend == "postgresql" else "named"
    insert, repeat, event = (_sql(t, style) for t in (_INSERT, _REPEAT, _EVENT))

    def params(alert: dict) -> dict:
        return {"source": source_id, "external_id": alert["external_id"], "title": alert["title"],
                "details": json.dumps(alert.get("details") or {})}

    if db.backend == "postgresql":
        import psycopg2

        def make_sender():
            conn = psycopg2.connect(db.dsn)

            def send(alert):
                p = params(alert)
                with conn.cursor() as cur:
                    cur.execute(insert, p)
                    row = cur.fetchone()
                    if row is None:
                        cur.execute(repeat, p)
                    else:
                        cur.execute(event, {**p, "id": row[0]})
                conn.commit()
            send.close = conn.close
            return send
        return make_sender

    def make_sender():
        conn = sqlite3.connect(db.sqlite_path, timeout=15, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "busy_timeout=15000", "foreign_keys=ON", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")

        def send(alert):
            p = params(alert)
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(insert, p).fetchone()
            if row is None:
                conn.execute(repeat, p)
            else:
                conn.execute(event, {**p, "id": row[0]})
            conn.execute("COMMIT")
        send.close = conn.close
        return send
    return make_sender


def report(name: str, count: int, elapsed: float, latencies: list[float]) -> float:
    """Print one line of figures; returns alerts/s."""
    rate = count / elapsed
    print(f"  {name:<28} {rate:8.0f} alerts/s   p50 {percentile(latencies, 50) * 1000:7.2f} ms   "
          f"p99 {percentile(latencies, 99) * 1000:7.2f} ms   max {max(latencies) * 1000:7.2f} ms", flush=True)
    return rate


def machine() -> str:
    """One line on where the figures were taken: cores and load."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}"
