"""Ingestion benchmark: gunicorn on PostgreSQL and SQLite, each against its own raw ceiling.

    .venv/bin/python bench/ingest.py [--alerts 2000] [--senders 8] [--repeat-share 0.5]
                                     [--backend both|postgresql|sqlite] [--workers 2] [--threads 4]
                                     [--rounds 4]

For each backend (PostgreSQL, then SQLite in WAL mode), on a scratch database, in the same run,
taking turns over `--rounds` slices of the alerts (raw, PagerPal, PagerPal, raw, ...), so a
host whose speed drifts weighs on both alike (bench/harness.py: interleaved):

1. raw ceiling — the same alerts written straight to the database by the same number of
   concurrent senders, one transaction per alert: the dedup INSERT ... ON CONFLICT DO
   NOTHING, the occurrence UPDATE for a repeat, the timeline row for a new incident,
   COMMIT. No HTTP, no parsing, no ORM, no paging (bench/harness.py).
2. PagerPal — the alerts POSTed to /api/v1/alerts on `gunicorn -c deploy/gunicorn.conf.py`
   (`--workers` × `--threads`), each sender with its own keep-alive connection.

Half the alerts (`--repeat-share`) repeat one of 50 hot keys; the rest open new incidents
on a source without an escalation policy (as on main since the first benchmark). Prints
alerts/s and p50/p99 latency for both, and PagerPal's share of the ceiling (target: ≥ 25 %,
p99 < 100 ms at 8 senders on a quiet machine); exit status 1 when the counts are wrong.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    Gunicorn,
    ScratchDatabase,
    Senders,
    add_serving_arguments,
    chosen_backends,
    http_senders,
    interleaved,
    machine,
    percentile,
    raw_senders,
    report,
)
from sqlalchemy import func, select  # noqa: E402

from pagerpal_core.db import make_engine, make_session_factory  # noqa: E402
from pagerpal_core.models import Incident  # noqa: E402
from pagerpal_core.services.alert_sources import create_alert_source  # noqa: E402
from pagerpal_core.timeutil import utcnow  # noqa: E402


def make_alerts(count: int, repeat_share: float, seed: int = 7) -> list[dict]:
    """`count` generic alerts: a `repeat_share` of them repeat one of 50 hot keys."""
    rng = random.Random(seed)
    alerts = []
    for i in range(count):
        key = f"hot-{rng.randrange(50)}" if rng.random() < repeat_share else f"new-{i}"
        alerts.append({"title": f"Bench alert {key}", "external_id": key, "severity": "warning",
                       "details": {"host": f"web-{i % 17}", "bench": True}})
    return alerts


def run_backend(backend: str, args) -> tuple[bool, float, float]:
    """One backend: (counts right, ratio to the ceiling, PagerPal's p99 in ms)."""
    with tempfile.TemporaryDirectory(prefix="pagerpal-ingest-") as workdir, \
            ScratchDatabase(backend, Path(workdir)) as db:
        engine = make_engine(db.url)
        session = make_session_factory(engine)()
        web_source = create_alert_source(session, name="bench-http", now=utcnow())
        raw_source = create_alert_source(session, name="bench-raw", now=utcnow())
        session.commit()
        alerts = make_alerts(args.alerts, args.repeat_share)
        warmup = [{"title": f"warm-up {i}", "external_id": f"warm-{i}", "details": {}}
                  for i in range(4 * args.senders)]
        print(f"\n{backend}: {args.alerts} alerts ({args.repeat_share:.0%} repeats of 50 hot keys), "
              f"{args.senders} senders, gunicorn {args.workers} workers × {args.threads} threads, ceiling and "
              f"PagerPal taking turns over {args.rounds} slices ({machine()})",
              flush=True)
        with Gunicorn(db.url, Path(workdir), workers=args.workers, threads=args.threads) as server, \
                Senders(args.senders, raw_senders(db, raw_source.source.id)) as raw, \
                Senders(args.senders, http_senders(server.url, web_source.key)) as web:
            try:
                raw.run(warmup)
                web.run(warmup)
                measured = interleaved(alerts, {"raw": raw, "web": web}, args.rounds)
            except RuntimeError:
                server.say_errors()
                raise
        (raw_elapsed, raw_lat), (web_elapsed, web_lat) = measured["raw"], measured["web"]
        raw_rate = report("raw ceiling", args.alerts, raw_elapsed, raw_lat)
        web_rate = report("PagerPal HTTP (gunicorn)", args.alerts, web_elapsed, web_lat)
        ratio, p99 = web_rate / raw_rate, percentile(web_lat, 99) * 1000
        print(f"  PagerPal reaches {ratio:.0%} of {backend}'s raw ceiling (target ≥ 25%); "
              f"p99 {p99:.1f} ms (target < 100 ms)")

        # The run must also have been right: one incident per key, every alert counted.
        keys = {a["external_id"] for a in alerts} | {a["external_id"] for a in warmup}
        incidents, occurrences = session.execute(
            select(func.count(), func.sum(Incident.occurrence_count))
            .where(Incident.alert_source_id == web_source.source.id)).one()
        ok = incidents == len(keys) and occurrences == len(alerts) + len(warmup)
        print(f"  check: {incidents} incidents for {len(keys)} keys, {occurrences} occurrences for "
              f"{len(alerts) + len(warmup)} alerts — {'ok' if ok else 'MISMATCH'}", flush=True)
        session.close()
        engine.dispose()
        return ok, ratio, p99


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--repeat-share", type=float, default=0.5)
    add_serving_arguments(parser)
    args = parser.parse_args(argv)
    backends = chosen_backends(args)
    if backends is None:
        return 2
    ok, summary = True, []
    for backend in backends:
        passed, ratio, p99 = run_backend(backend, args)
        ok &= passed
        summary.append(f"{backend} {ratio:.0%} of the ceiling, p99 {p99:.0f} ms")
    print("\nsummary: " + "; ".join(summary) + f" — checks {'passed' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
