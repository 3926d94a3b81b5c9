"""A real PagerPal web server for tests and the benchmark: gunicorn in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GunicornServer:
    """`gunicorn -c deploy/gunicorn.conf.py` on a free loopback port; stdout+stderr to `log_path`."""

    def __init__(self, database_url: str, workdir: Path, *, workers: int = 2, threads: int = 8, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(workdir) / "gunicorn.log"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
            "ENVIRONMENT": "test",
            "PAGERPAL_INSTANCE_PATH": str(Path(workdir) / "instance"),
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
            "LOG_LEVEL": "INFO",
            **{k: str(v) for k, v in env.items()},
        }
        self.workers = workers
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
            if self.serving_pids() >= self.workers:
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

    def serving_pids(self) -> int:
        """How many workers have answered /health (a booting worker answers nothing yet).

        A burst of fresh connections reaches every worker that is accepting; the access
        log says which process answered each.
        """
        def ping(_):
            try:
                requests.get(self.url + "/health", headers={"Connection": "close"}, timeout=2)
            except requests.RequestException:
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
