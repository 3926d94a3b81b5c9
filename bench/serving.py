"""Which gunicorn shape serves alert ingestion best on this machine: sync vs gthread, workers × threads.

    .venv/bin/python bench/serving.py [--storm 3000] [--mixed 2000] [--senders 8]
                                      [--shapes sync:2,sync:4,sync:8,gthread:2x4,gthread:2x8,gthread:4x2,gthread:4x4]

On one scratch PostgreSQL database, for each gunicorn shape: a fresh server and two loads
from `--senders` keep-alive senders — a storm (identical alerts, one incident) and
bench/ingest.py's mix (half repeats of 50 hot keys, half new incidents) — each taking turns
with the raw ceiling of the same load (bench/harness.py), so a busy machine skews both alike.
Prints alerts/s, the ceiling, the share and p99 per shape, so the recommendation in
deploy/README.md can be re-checked on any machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    Gunicorn,
    ScratchDatabase,
    Senders,
    http_senders,
    interleaved,
    machine,
    percentile,
    postgres_unavailable_reason,
    raw_senders,
)
from ingest import make_alerts  # noqa: E402
from storm import storm_alerts  # noqa: E402

from pagerpal_core.db import make_engine, make_session_factory  # noqa: E402
from pagerpal_core.services.alert_sources import create_alert_source  # noqa: E402
from pagerpal_core.timeutil import utcnow  # noqa: E402

DEFAULT_SHAPES = "sync:2,sync:4,sync:8,gthread:2x4,gthread:2x8,gthread:4x2,gthread:4x4"


def parse_shape(text: str) -> tuple[str, int, int]:
    """"sync:4" → ("sync", 4, 1); "gthread:2x4" → ("gthread", 2, 4)."""
    kind, _, size = text.partition(":")
    if kind == "sync":
        return kind, int(size), 1
    workers, _, threads = size.partition("x")
    return kind, int(workers), int(threads)


def new_sources(url: str, names: list[str]) -> dict[str, tuple[int, str]]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            issued = {name: create_alert_source(session, name=name, now=utcnow()) for name in names}
            session.commit()
            return {name: (i.source.id, i.key) for name, i in issued.items()}
    finally:
        engine.dispose()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--storm", type=int, default=3000)
    parser.add_argument("--mixed", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--shapes", default=DEFAULT_SHAPES)
    parser.add_argument("--rounds", type=int, default=4, help="slices the ceiling and each shape take turns on")
    args = parser.parse_args(argv)
    reason = postgres_unavailable_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    shapes = [parse_shape(s) for s in args.shapes.split(",")]
    loads = {"storm": storm_alerts(args.storm), "mixed": make_alerts(args.mixed, 0.5)}
    with tempfile.TemporaryDirectory(prefix="pagerpal-serving-") as workdir, \
            ScratchDatabase("postgresql", Path(workdir)) as db:
        print(f"PostgreSQL, {args.senders} senders ({machine()}); each shape beside a raw ceiling, the two "
              f"taking turns over {args.rounds} slices", flush=True)
        print(f"  {'shape':<14} {'storm/s':>8} {'ceiling':>8} {'share':>6} {'p99 ms':>7}   "
              f"{'mixed/s':>8} {'ceiling':>8} {'share':>6} {'p99 ms':>7}")
        for n, (kind, workers, threads) in enumerate(shapes):
            ids = new_sources(db.url, [f"{load}-{n}" for load in loads] + [f"raw-{load}-{n}" for load in loads])
            line = f"  {f'{kind} {workers}x{threads}':<14}"
            with Gunicorn(db.url, Path(workdir), workers=workers, threads=threads) as server:
                for load, alerts in loads.items():
                    with Senders(args.senders, raw_senders(db, ids[f"raw-{load}-{n}"][0])) as raw, \
                            Senders(args.senders, http_senders(server.url, ids[f"{load}-{n}"][1])) as web:
                        measured = interleaved(alerts, {"raw": raw, "web": web}, args.rounds)
                    (raw_elapsed, _), (elapsed, latencies) = measured["raw"], measured["web"]
                    rate, ceiling = len(alerts) / elapsed, len(alerts) / raw_elapsed
                    line += (f" {rate:8.0f} {ceiling:8.0f} {rate / ceiling:6.0%} "
                             f"{percentile(latencies, 99) * 1000:7.1f}  ")
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
