"""Worker test helpers: settings, incidents with queued pages, a worker context, real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pagerpal_core.models import Incident, Notification
from pagerpal_core.settings import Settings
from pagerpal_core.timeutil import utcnow
from pagerpal_core.wakeup import notify_new_work
from pagerpal_worker.main import make_context
from tests.fakes.infobip import FakeInfobip

ROOT = Path(__file__).resolve().parents[2]
WORKER_BIN = ROOT / ".venv" / "bin" / "pagerpal-worker"
FAKE_KEY = "test-infobip-key"


def worker_env(database_url: str, instance: Path, infobip_url: str | None = None, **extra) -> dict[str, str]:
    """Environment variables for a worker on `database_url` sending SMS to `infobip_url`."""
    env = {
        "DATABASE_URL": database_url,
        "PAGERPAL_INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "ENVIRONMENT": "test",
        "WORKER_POLL_INTERVAL": "0.2",
        "NOTIFICATION_SENDING_ENABLED": "true" if infobip_url else "false",
        "NOTIFICATION_RETRY_BASE_SECONDS": "0.2",
        "NOTIFICATION_RETRY_MAX_SECONDS": "2",
        "NOTIFICATION_MAX_ATTEMPTS": "4",
        "NOTIFICATION_LEASE_SECONDS": "10",
        "PROVIDER_TIMEOUT_SECONDS": "1",
        "PAGERPAL_BASE_URL": "https://pagerpal.example.test",
    }
    if infobip_url:
        env.update({"INFOBIP_BASE_URL": infobip_url, "INFOBIP_API_KEY": FAKE_KEY,
                    "INFOBIP_SMS_SENDER": "PagerPal"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def worker_settings(database_url: str, tmp_path: Path, infobip_url: str | None = None, **extra) -> Settings:
    return Settings.from_env(environ=worker_env(database_url, tmp_path / "instance", infobip_url, **extra))


@pytest.fixture
def fake_infobip():
    with FakeInfobip(api_key=FAKE_KEY) as fake:
        yield fake


@pytest.fixture
def make_ctx(database_url, tmp_path):
    """make_ctx(infobip_url=None, senders=None, **env) → a WorkerContext on the test database."""
    contexts = []

    def build(infobip_url=None, senders=None, **extra):
        ctx = make_context(worker_settings(database_url, tmp_path, infobip_url, **extra), senders=senders)
        contexts.append(ctx)
        return ctx

    yield build
    for ctx in contexts:
        ctx.close()
        ctx.session_factory.kw["bind"].dispose()
        ctx.stop.close()


def make_incident(session, *, title="Disk full on db-1", status="triggered") -> Incident:
    incident = Incident(title=title, description="95% used on /var", severity="critical", status=status,
                        details={}, links=[])
    session.add(incident)
    session.flush()
    return incident


def queue_pages(session, incident: Incident | None, count: int, *, now: datetime | None = None,
                channel: str = "sms", first_number: int = 15550000000) -> list[int]:
    """Insert `count` pending pages (distinct numbers) due now; returns their ids (committed)."""
    now = now or utcnow()
    rows = [Notification(incident_id=incident.id if incident else None, channel=channel,
                         destination=f"+{first_number + i}", subject=f"[CRITICAL] page {i}",
                         body=f"[CRITICAL] page {i} https://pagerpal.example.test/incidents/1",
                         status="pending", attempts=0, next_attempt_at=now, dedup_key=f"test-{first_number + i}")
            for i in range(count)]
    session.add_all(rows)
    session.flush()
    notify_new_work(session)  # as the web does: wake a listening worker on commit
    session.commit()
    return [r.id for r in rows]


def status_counts(session) -> dict[str, int]:
    session.expire_all()
    rows = session.execute(select(Notification.status, func.count()).group_by(Notification.status))
    return dict(rows.all())


def notification_ids_received(fake: FakeInfobip) -> list[int]:
    """Notification ids the fake was asked to send (from each SMS's callbackData)."""
    out = []
    for req in list(fake.requests):
        for msg in (req.body or {}).get("messages", []) if isinstance(req.body, dict) else []:
            data = str(msg.get("callbackData", ""))
            if data.startswith("pagerpal-notification-"):
                out.append(int(data.rsplit("-", 1)[1]))
    return out


def wait_until(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    """Poll `predicate` until truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class WorkerProcess:
    """A real `pagerpal-worker` subprocess whose JSON log lines are collected as they arrive."""

    def __init__(self, env: dict[str, str], cwd: Path, name: str = "worker"):
        self.name = name
        full_env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
        full_env.update(env)
        self.proc = subprocess.Popen([str(WORKER_BIN)], env=full_env, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[dict] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.raw.append(line.rstrip())
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    @property
    def pid(self) -> int:
        return self.proc.pid

    def logged(self, message: str) -> list[dict]:
        return [line for line in list(self.lines) if line.get("message") == message]

    def wait_for_log(self, message: str, timeout: float = 15) -> dict:
        return wait_until(lambda: (self.logged(message) or [None])[0] or (self._died(message)), timeout,
                          message=f"{self.name} to log {message!r}")

    def _died(self, message):
        if self.proc.poll() is not None:
            pytest.fail(f"{self.name} exited ({self.proc.returncode}) before logging {message!r}:\n"
                        + "\n".join(self.raw[-30:]))
        return None

    def signal(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # faulthandler: dump every thread's stack
            time.sleep(1)
            pytest.fail(f"{self.name} still running after {timeout}s; its last lines:\n"
                        + "\n".join(self.raw[-60:]))
        self._reader.join(timeout=5)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._reader.join(timeout=5)


@pytest.fixture
def start_worker(tmp_path):
    """start_worker(env, name=...) → WorkerProcess; every one is killed after the test."""
    procs: list[WorkerProcess] = []

    def start(env: dict[str, str], name: str = "worker") -> WorkerProcess:
        proc = WorkerProcess(env, cwd=tmp_path, name=name)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        if proc.proc.stdout:
            proc.proc.stdout.close()


def later(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)


def read(session, fn):
    """Run `fn()` in a fresh, short transaction and end it at once.

    On SQLite every transaction starts with BEGIN IMMEDIATE (the write lock), so a test
    session left open would block the worker it is checking.
    """
    session.rollback()
    session.expire_all()  # expire_on_commit=False: without this, reads return cached rows
    try:
        return fn()
    finally:
        session.commit()


def load(session, model, ident):
    return read(session, lambda: session.get(model, ident))
