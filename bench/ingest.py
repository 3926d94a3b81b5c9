"""Ingestion benchmark: gunicorn (2 workers) on PostgreSQL against the raw psycopg2 ceiling.

    .venv/bin/python bench/ingest.py [--alerts 2000] [--senders 8] [--repeat-share 0.5]

Creates a scratch PostgreSQL database, then measures, in the same run:

1. raw ceiling — the same alerts written straight to the database with psycopg2 by the
   same number of concurrent senders, one transaction per alert: the dedup INSERT ...
   ON CONFLICT DO NOTHING, the occurrence UPDATE for a repeat, the timeline row for a new
   incident, COMMIT. No HTTP, no parsing, no ORM, no paging.
2. PagerPal — the alerts POSTed to /api/v1/alerts on `gunicorn -c deploy/gunicorn.conf.py`
   (2 workers × --threads), each sender with its own keep-alive connection.

Prints alerts/s and p50/p99 latency for both, and PagerPal's share of the ceiling
(target: ≥ 25 %, p99 < 100 ms at 8 senders). The database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from pagerpal_core.db import make_engine, make_session_factory  # noqa: E402
from pagerpal_core.models import Incident  # noqa: E402
from pagerpal_core.models.incidents import OPEN_INCIDENT_PREDICATE  # noqa: E402
from pagerpal_core.services.alert_sources import create_alert_source  # noqa: E402
from pagerpal_core.timeutil import utcnow  # noqa: E402
from tests import dbutil  # noqa: E402
from tests.ingestion.server import GunicornServer  # noqa: E402

RAW_INSERT = f"""
    INSERT INTO incidents (alert_source_id, external_id, title, description, severity, status, details, links,
                           current_level, escalation_round, page_generation, unrouted, occurrence_count,
                           last_seen_at, repeats_unlogged, created_at, updated_at)
    VALUES (%(source)s, %(external_id)s, %(title)s, '', 'high', 'triggered', %(details)s, '[]',
            0, 0, 0, false, 1, now(), 0, now(), now())
    ON CONFLICT (alert_source_id, external_id) WHERE {OPEN_INCIDENT_PREDICATE} DO NOTHING
    RETURNING id
"""
RAW_REPEAT = f"""
    UPDATE incidents SET occurrence_count = occurrence_count + 1, last_seen_at = now(),
                         repeats_unlogged = repeats_unlogged + 1
     WHERE alert_source_id = %(source)s AND external_id = %(external_id)s AND {OPEN_INCIDENT_PREDICATE}
"""
RAW_EVENT = """
    INSERT INTO incident_events (incident_id, created_at, kind, actor_source_id, actor_label, message, detail)
    VALUES (%(id)s, now(), 'triggered', %(source)s, 'source bench', %(title)s, %(details)s)
"""


def make_alerts(count: int, repeat_share: float, seed: int = 7) -> list[dict]:
    """`count` generic alerts: a `repeat_share` of them repeat one of 50 hot keys."""
    rng = random.Random(seed)
    alerts = []
    for i in range(count):
        if rng.random() < repeat_share:
            key = f"hot-{rng.randrange(50)}"
        else:
            key = f"new-{i}"
        alerts.append({"title": f"Bench alert {key}", "external_id": key, "severity": "warning",
                       "details": {"host": f"web-{i % 17}", "bench": True}})
    return alerts


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def run_concurrently(alerts: list[dict], senders: int, make_worker) -> tuple[float, list[float]]:
    """Split `alerts` round-robin over `senders` threads; returns (elapsed s, latencies s)."""
    latencies: list[float] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(senders)

    def sender(index: int):
        send = make_worker()
        mine = alerts[index::senders]
        local = []
        start_gate.wait()
        for alert in mine:
            t0 = time.perf_counter()
            send(alert)
            local.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(local)
        close = getattr(send, "close", None)
        if close:
            close()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=senders) as pool:
        list(pool.map(sender, range(senders)))
    return time.perf_counter() - started, latencies


def raw_ceiling(dsn: str, source_id: int, alerts: list[dict], senders: int):
    def make_worker():
        conn = psycopg2.connect(dsn)

        def send(alert):
            params = {"source": source_id, "external_id": alert["external_id"], "title": alert["title"],
                      "details": json.dumps(alert["details"])}
            with conn.cursor() as cur:
                cur.execute(RAW_INSERT, params)
                row = cur.fetchone()
                if row is None:
                    cur.execute(RAW_REPEAT, params)
                else:
                    cur.execute(RAW_EVENT, {**params, "id": row[0]})
            conn.commit()
        send.close = conn.close
        return send

    return run_concurrently(alerts, senders, make_worker)


def pagerpal_http(url: str, key: str, alerts: list[dict], senders: int):
    # http.client with one keep-alive connection per sender: the client should cost as
    # little CPU as possible, since it shares the machine with the server it measures.
    host, port = url.removeprefix("http://").split(":")
    headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def make_worker():
        state = {"conn": http.client.HTTPConnection(host, int(port), timeout=30)}

        def send(alert):
            body = json.dumps(alert).encode()
            for attempt in (1, 2):
                try:
                    state["conn"].request("POST", "/api/v1/alerts", body=body, headers=headers)
                    response = state["conn"].getresponse()
                    data = response.read()
                    break
                except (ConnectionError, http.client.HTTPException):
                    state["conn"].close()  # the server closed an idle keep-alive: reconnect once
                    state["conn"] = http.client.HTTPConnection(host, int(port), timeout=30)
                    if attempt == 2:
                        raise
            if response.status not in (200, 201):
                raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        send.close = lambda: state["conn"].close()
        return send

    return run_concurrently(alerts, senders, make_worker)


def report(name: str, count: int, elapsed: float, latencies: list[float]) -> float:
    rate = count / elapsed
    print(f"{name:<26} {rate:9.0f} alerts/s   p50 {percentile(latencies, 50) * 1000:7.2f} ms   "
          f"p99 {percentile(latencies, 99) * 1000:7.2f} ms   max {max(latencies) * 1000:7.2f} ms")
    return rate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--repeat-share", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    args = parser.parse_args(argv)

    reason = dbutil.postgres_unavailable_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    name = dbutil.create_pg_database(prefix="pagerpal_bench")
    url = dbutil.pg_url(name)
    try:
        dbutil.upgrade(url)
        engine = make_engine(url)
        session = make_session_factory(engine)()
        web_source = create_alert_source(session, name="bench-http", now=utcnow())
        raw_source = create_alert_source(session, name="bench-raw", now=utcnow())
        session.commit()
        alerts = make_alerts(args.alerts, args.repeat_share)
        warmup = [{"title": f"warm-up {i}", "external_id": f"warm-{i}", "details": {}}
                  for i in range(4 * args.senders)]
        dsn = url.replace("postgresql+psycopg2://", "postgresql://")

        print(f"{args.alerts} alerts ({args.repeat_share:.0%} repeats of 50 hot keys), "
              f"{args.senders} concurrent senders, gunicorn 2 workers × {args.threads} threads, PostgreSQL")
        raw_ceiling(dsn, raw_source.source.id, warmup, args.senders)
        raw_elapsed, raw_lat = raw_ceiling(dsn, raw_source.source.id, alerts, args.senders)

        with tempfile.TemporaryDirectory() as workdir, GunicornServer(
                url, Path(workdir), workers=2, threads=args.threads, LOG_LEVEL="WARNING",
                GUNICORN_MAX_REQUESTS=0,  # no worker recycling in the middle of a measurement
                ALERT_SOURCE_RATE_LIMIT_CAPACITY=10 ** 9, ALERT_SOURCE_RATE_LIMIT_REFILL_PER_SECOND=10 ** 6,
        ) as server:
            try:
                pagerpal_http(server.url, web_source.key, warmup, args.senders)
                web_elapsed, web_lat = pagerpal_http(server.url, web_source.key, alerts, args.senders)
            except RuntimeError:
                errors = [line for line in server.log().splitlines() if '"level": "error"' in line]
                print("\n".join(errors[-3:]), file=sys.stderr)
                raise

        raw_rate = report("raw psycopg2 ceiling", args.alerts, raw_elapsed, raw_lat)
        web_rate = report("PagerPal HTTP (gunicorn)", args.alerts, web_elapsed, web_lat)
        print(f"PagerPal reaches {web_rate / raw_rate:.0%} of the raw ceiling "
              f"(target ≥ 25%); p99 {percentile(web_lat, 99) * 1000:.1f} ms (target < 100 ms)")

        # The run must also have been right: one incident per key, every alert counted.
        web_id = web_source.source.id
        keys = {a["external_id"] for a in alerts} | {a["external_id"] for a in warmup}
        incidents, occurrences = session.execute(
            select(func.count(), func.sum(Incident.occurrence_count))
            .where(Incident.alert_source_id == web_id)).one()
        ok = incidents == len(keys) and occurrences == len(alerts) + len(warmup)
        print(f"check: {incidents} incidents for {len(keys)} keys, {occurrences} occurrences for "
              f"{len(alerts) + len(warmup)} alerts — {'ok' if ok else 'MISMATCH'}")
        session.close()
        engine.dispose()
        return 0 if ok else 1
    finally:
        dbutil.drop_pg_database(name)


if __name__ == "__main__":
    sys.exit(main())
