"""Gunicorn settings for PagerPal's web process.

    gunicorn --config deploy/gunicorn.conf.py "pagerpal_web:create_app()"


Everything comes from the environment so the same file serves systemd, Docker and a Procfile:

  GUNICORN_BIND              host:port to listen on (default: $HOST:$PORT, i.e. 127.0.0.1:8000)
  GUNICORN_WORKERS           worker processes (default: $WEB_CONCURRENCY, else 2)
  GUNICORN_THREADS           threads per worker (default 4: the gthread worker; 1 = the sync worker)
  GUNICORN_TIMEOUT           seconds a request may take before its worker is replaced (default 30)
  GUNICORN_GRACEFUL_TIMEOUT  seconds in-flight requests get after SIGTERM (default 30)
  GUNICORN_MAX_REQUESTS      requests before a worker is replaced (default 0 = never)
  GUNICORN_CONTROL_SOCKET    path of gunicorn's control socket (default: none)
  PROMETHEUS_MULTIPROC_DIR   where workers share /metrics counters (default: a fresh temp dir)

Access lines are JSON, one per request, with the X-Request-ID the app echoes, so a gunicorn
line and the app's own log lines for one request share an id. The query string is never
logged: alert senders that cannot set headers put `?api_key=` there. Gunicorn's own messages
quote raw request lines of malformed requests, so every line it writes passes through
PagerPal's redaction (pagerpal_core.logs) with the configured secrets.

Serving on a non-loopback address with a SECRET_KEY that could not pass the production check
(the development default, a published placeholder, a short or patterned key) logs a loud
warning at startup.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time

from gunicorn.glogging import Logger

from pagerpal_core.logs import JsonFormatter, RedactingFormatter
from pagerpal_core.security import redact


def _env_int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, got {value}")
    return value


bind = (os.environ.get("GUNICORN_BIND")
        or f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}")
workers = _env_int("GUNICORN_WORKERS", _env_int("WEB_CONCURRENCY", 2))
# Threads overlap a request's database waits and keep senders' connections alive; the sync
# worker (1) closes each after one request (deploy/README.md, bench/serving.py).
threads = _env_int("GUNICORN_THREADS", 4)
# Requests only read and write rows (providers are the worker's job), so 30 s is generous.
timeout = _env_int("GUNICORN_TIMEOUT", 30)
# SIGTERM: stop accepting, let in-flight requests (an alert being committed) finish.
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = 5
# Workers are not recycled by default: each new worker process adds its own file of /metrics
# counters (kept until restart so totals stay right), so recycling often grows that directory.
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 0, minimum=0)
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 200, minimum=0)
# The heartbeat file lives in memory: a disk stall must not look like a hung worker.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "pagerpal-web"
# Gunicorn 25+ opens a control socket at $HOME/.gunicorn/gunicorn.ctl by default: one path for
# every instance on the host, and unwritable under systemd's ProtectHome. Off unless a path is
# given (older gunicorn ignores both settings).
if os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip():
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"].strip()
else:
    control_socket_disable = True
# create_app() runs in each worker after the fork: no connection pool is shared across forks.
preload_app = False


def _clip(value, limit: int = 300):
    if value is None:
        return None
    value = str(value)
    return value if len(value) <= limit else value[:limit] + "…"


def _pagerpal_settings():
    """PagerPal's settings as the app will read them, or None when they do not parse
    (create_app then refuses to start and says why)."""
    try:
        from pagerpal_core.settings import Settings

        return Settings.from_env()
    except Exception:
        return None


class JsonLogger(Logger):
    """Gunicorn logger writing JSON: one object per access line and per error-log record.

    Both go through PagerPal's redaction: gunicorn's error log quotes the raw request line
    of a malformed request, `?api_key=ppk_...` included.
    """

    access_secrets: list[str] = []  # the configured secrets (setup)

    def setup(self, cfg):
        super().setup(cfg)
        settings = _pagerpal_settings()
        secrets = settings.secret_values() if settings else []
        self.access_secrets = secrets
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter(secrets))
        for handler in self.access_log.handlers:
            handler.setFormatter(RedactingFormatter(logging.Formatter("%(message)s"), secrets))

    def access(self, resp, req, environ, request_time):
        """One JSON line per request; never the query string (it may hold `api_key`)."""
        if not self.access_log_enabled:
            return
        headers = {name.lower(): value for name, value in (resp.headers or [])}
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "level": "info",
            "logger": "gunicorn.access",
            "message": "request",
            "request_id": _clip(headers.get("x-request-id"), 100),
            "method": environ.get("REQUEST_METHOD"),
            "path": _clip(environ.get("PATH_INFO"), 500),
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "remote": environ.get("REMOTE_ADDR"),
            "forwarded_for": _clip(environ.get("HTTP_X_FORWARDED_FOR"), 200),
            "user_agent": _clip(environ.get("HTTP_USER_AGENT"), 200),
            "pid": os.getpid(),
        }
        try:
            self._write_access(json.dumps({k: v for k, v in entry.items() if v is not None}, ensure_ascii=False))
        except Exception:  # a log line must never fail a request
            self.exception("could not write the access log line")

    def _write_access(self, line: str) -> None:
        """`line`, redacted, to every access handler: straight onto a stream handler's stream
        (a LogRecord, the caller lookup and the formatter round cost more than the line
        itself, on every request), through the handler otherwise (syslog)."""
        line = redact(line, self.access_secrets)
        record = None
        for handler in self.access_log.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is not None:
                handler.acquire()
                try:
                    handler.stream.write(line + "\n")
                    handler.flush()
                finally:
                    handler.release()
                continue
            if record is None:
                record = self.access_log.makeRecord(self.access_log.name, logging.INFO, __file__, 0, line, None, None)
            handler.handle(record)


logger_class = JsonLogger

_created_metrics_dir: list[str] = []


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def _public_binds(addresses) -> list[str]:
    """The bind addresses other machines might reach: not loopback TCP (unix sockets count,
    as a proxy usually publishes them)."""
    public = []
    for address in addresses:
        address = str(address)
        host = address.rsplit(":", 1)[0] if not address.startswith("unix:") else address
        if host not in LOOPBACK_HOSTS and not host.startswith("127."):
            public.append(address)
    return public


def when_ready(server):
    """Warn loudly when a weak SECRET_KEY signs sessions on an address others can reach."""
    from pagerpal_core.settings import secret_key_problem

    settings = _pagerpal_settings()
    problem = secret_key_problem(settings.secret_key) if settings else None
    public = _public_binds(server.cfg.bind or [])
    if problem and public:
        for _ in range(3):  # hard to miss between the boot lines
            server.log.warning(f"INSECURE: serving on {', '.join(public)} with a SECRET_KEY anyone can guess "
                               f"or forge sessions with — {problem}")


def on_starting(server):
    """Give the workers one shared directory for /metrics counters, emptied at each start.

    prometheus_client's multiprocess mode keeps each worker's counters in files there and
    sums them on every scrape, so a counter is correct whichever worker served the alert.
    It must be in the environment before any worker imports prometheus_client.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="pagerpal-metrics-")
        _created_metrics_dir.append(directory)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    os.makedirs(directory, exist_ok=True)
    # Counters from a previous run would be summed with ours: start from zero (Prometheus
    # treats the drop as a counter reset, as it does for any restart).
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))


def child_exit(server, worker):
    """A dead worker's live gauges must disappear; its counters stay in the totals."""
    try:
        from prometheus_client import multiprocess
    except ImportError:
        return
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this config created (never one it was given)."""
    for directory in _created_metrics_dir:
        shutil.rmtree(directory, ignore_errors=True)
