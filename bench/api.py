"""Management API read benchmark: Basic auth with and without the credential cache.

    .venv/bin/python bench/api.py [--calls 400] [--clients 4] [--sqlite]

Starts gunicorn (`deploy/gunicorn.conf.py`, 2 workers × 4 threads) on a scratch
PostgreSQL database (or SQLite with --sqlite) holding 200 users, and measures
`GET /api/v1/users?limit=20` with HTTP Basic auth of one admin account, twice:

1. cache on  — the shipped app: a verified (email, password) pair is remembered per
   process for 60 s under a SHA-256 key and re-checked against `auth_version`;
2. cache off — the same app with the cache's TTL set to 0, so every call runs the
   scrypt password check (the cold path every call would take without a cache).

Prints calls/s and p50/p99 latency for each. The database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.harness import ScratchDatabase, free_port  # noqa: E402

PASSWORD = "bench-password-0123456789"
EMAIL = "bench-admin@example.test"


def uncached_app():
    """The normal app with the credential cache disabled (gunicorn factory for the cold run)."""
    from pagerpal_web import auth, create_app

    app = create_app()
    auth.credential_cache.ttl = 0.0  # every entry expires at once: each call verifies the password
    return app


def prepare(database_url: str) -> None:
    """Seed the migrated scratch database: one admin (the caller) and 199 more users with an email each."""
    from pagerpal_core.db import make_engine, make_session_factory
    from pagerpal_core.services.users import create_user

    engine = make_engine(database_url)
    session = make_session_factory(engine)()
    create_user(session, email=EMAIL, name="Bench admin", role="admin", password=PASSWORD)
    for i in range(199):
        create_user(session, email=f"person{i}@example.test", name=f"Person {i}",
                    contact_methods=[{"channel": "email", "destination": f"person{i}@example.test"}])
    session.commit()
    session.close()
    engine.dispose()


class Server:
    """gunicorn on a free loopback port serving `app_spec`."""

    def __init__(self, app_spec: str, database_url: str, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app_spec = app_spec
        self.log_path = workdir / f"gunicorn-{self.port}.log"
        self.env = {**os.environ, "DATABASE_URL": database_url, "ENVIRONMENT": "test",
                    "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
                    "PAGERPAL_INSTANCE_PATH": str(workdir / "instance"), "LOG_LEVEL": "WARNING",
                    "GUNICORN_BIND": f"127.0.0.1:{self.port}", "GUNICORN_WORKERS": "2",
                    "GUNICORN_THREADS": "4"}

    def __enter__(self):
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
             self.app_spec],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.log_path.read_text()[-3000:])
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    time.sleep(1.0)  # let the second worker finish booting too
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("gunicorn did not start within 60 s")

    def __exit__(self, *exc):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


def measure(url: str, calls: int, clients: int) -> dict:
    """`calls` authenticated GETs spread over `clients` keep-alive connections."""
    def client(n: int) -> list[float]:
        session = requests.Session()
        session.auth = (EMAIL, PASSWORD)
        session.get(url, timeout=30).raise_for_status()  # warm-up (and, with the cache, the first verify)
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            response = session.get(url, timeout=30)
            samples.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
        return samples

    per_client = [calls // clients] * clients
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        samples = [s for result in pool.map(client, per_client) for s in result]
    elapsed = time.perf_counter() - start
    samples.sort()
    return {"calls": len(samples), "per_second": len(samples) / elapsed,
            "p50_ms": statistics.median(samples) * 1000,
            "p99_ms": samples[int(len(samples) * 0.99) - 1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sqlite", action="store_true", help="use a SQLite file instead of PostgreSQL")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pagerpal-bench-api-") as tmp:
        workdir = Path(tmp)
        with ScratchDatabase("sqlite" if args.sqlite else "postgresql", workdir) as database:
            prepare(database.url)
            results = {}
            runs = (("cache on", "pagerpal_web:create_app()"), ("cache off", "bench.api:uncached_app()"))
            for label, spec in runs:
                with Server(spec, database.url, workdir) as server:
                    results[label] = measure(server.url + "/api/v1/users?limit=20", args.calls, args.clients)
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"GET /api/v1/users?limit=20 on {backend}, gunicorn 2 workers x 4 threads, {args.clients} clients")
    for label, r in results.items():
        print(f"  {label:9}  {r['per_second']:7.1f} calls/s   p50 {r['p50_ms']:6.1f} ms"
              f"   p99 {r['p99_ms']:6.1f} ms   ({r['calls']} calls)")
    speedup = results["cache on"]["per_second"] / results["cache off"]["per_second"]
    print(f"  speed-up from the cache: {speedup:.1f}x")


if __name__ == "__main__":
    main()
