"""A real PagerPal web server for tests: the benchmarks' gunicorn subprocess with test defaults."""

from __future__ import annotations

from pathlib import Path

from bench.harness import Gunicorn

# The benchmarks lift these (they measure ingestion, not the rate limit, and never recycle
# workers); a test server keeps the app's own defaults unless a test names them.
_BENCH_ONLY = ("ALERT_SOURCE_RATE_LIMIT_CAPACITY", "ALERT_SOURCE_RATE_LIMIT_REFILL_PER_SECOND",
               "GUNICORN_MAX_REQUESTS")


class GunicornServer(Gunicorn):
    """`gunicorn -c deploy/gunicorn.conf.py` on a free loopback port, logging at INFO (tests read the log)."""

    def __init__(self, database_url: str, workdir: Path, *, workers: int = 2, threads: int = 8, **env):
        super().__init__(database_url, workdir, workers=workers, threads=threads, **{"LOG_LEVEL": "INFO", **env})
        for name in _BENCH_ONLY:
            if name not in env:
                self.env.pop(name, None)
