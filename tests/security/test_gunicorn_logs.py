"""gunicorn's own log lines are redacted, and a guessable SECRET_KEY on a public address is
shouted about (issue 12, findings 10 and 2), with the real gunicorn and its real config."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from pagerpal_core.settings import PROJECT_ROOT
from tests.ops.conftest import BIN, clean_environ

pytestmark = pytest.mark.slow

SOURCE_KEY = "ppk_" + "Zq3xW8vK2mT7nR4pL9sD6fH1jB5cA0eG"
# Request lines gunicorn refuses and quotes in its error log, each carrying an alert-source key.
MALFORMED = [
    f"GET /api/v1/alerts?api_key={SOURCE_KEY}\r\n\r\n",
    f"GET  /api/v1/alerts?api_key={SOURCE_KEY} HTTP/1.1\r\n\r\n",
    f"GET /api/v1/alerts?api_key={SOURCE_KEY}\x01 HTTP/1.1\r\n\r\n",
    f"GET /api/v1/webhooks/grafana/{SOURCE_KEY} HTTP/1.1 extra\r\n\r\n",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_gunicorn(tmp_path, database_url: str, *, bind_host: str, secret_key: str | None, send=()) -> str:
    """Start gunicorn with deploy/gunicorn.conf.py, send raw request lines, stop it; its output."""
    port = free_port()
    env = {**clean_environ(), "DATABASE_URL": database_url, "PAGERPAL_INSTANCE_PATH": str(tmp_path / "instance"),
           "GUNICORN_BIND": f"{bind_host}:{port}", "GUNICORN_WORKERS": "1", "LOG_LEVEL": "INFO"}
    if secret_key is not None:
        env["SECRET_KEY"] = secret_key
    log_path = tmp_path / f"gunicorn-{port}.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen([str(BIN / "gunicorn"), "--config", str(PROJECT_ROOT / "deploy" / "gunicorn.conf.py"),
                                   "pagerpal_web:create_app()"], cwd=tmp_path, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.2)
        for line in send:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
                conn.sendall(line.encode("latin-1"))
                assert conn.recv(100).startswith(b"HTTP/1.1 ")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=45)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    return log_path.read_text()


@pytest.mark.backends("sqlite")
def test_malformed_request_lines_do_not_leak_source_keys_and_weak_secret_is_flagged(database_url, tmp_path):
    # Development default secret (SECRET_KEY unset), bound to every interface: what the Procfile does.
    # A well-formed request whose User-Agent carries the key: gunicorn's access line quotes it.
    quoting = f"GET /health HTTP/1.1\r\nHost: x\r\nUser-Agent: probe {SOURCE_KEY}\r\nConnection: close\r\n\r\n"
    output = run_gunicorn(tmp_path, database_url, bind_host="0.0.0.0", secret_key=None, send=[*MALFORMED, quoting])
    assert '"user_agent": "probe [REDACTED]"' in output, output
    assert output.count("Invalid request from ip=") >= len(MALFORMED) - 1, output  # gunicorn did log them
    assert "[REDACTED]" in output
    assert SOURCE_KEY not in output and SOURCE_KEY[4:] not in output, output
    assert "INSECURE" in output and "SECRET_KEY is the default" in output


@pytest.mark.backends("sqlite")
def test_no_secret_warning_on_loopback_or_with_a_strong_key(database_url, tmp_path):
    local = run_gunicorn(tmp_path, database_url, bind_host="127.0.0.1", secret_key=None)
    assert "INSECURE" not in local
    strong = run_gunicorn(tmp_path, database_url, bind_host="0.0.0.0",
                          secret_key="Yt7-pQ2xV9mK4wL8nB3cR6dF1gH5jS0aZ_eU")
    assert "INSECURE" not in strong
