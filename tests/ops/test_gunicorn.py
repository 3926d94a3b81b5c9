"""The real gunicorn config: JSON access lines with the request id, and /metrics counters that are
exact across worker processes — even processes that have already exited."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from pagerpal_core.settings import PROJECT_ROOT
from tests.ops.conftest import BIN, clean_environ

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, *, method="GET", body: bytes | None = None, headers=None):
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Connection": "close", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def counter(text: str, name: str, **labels) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


@pytest.mark.backends("sqlite")
def test_gunicorn_workers_share_counters_and_log_json(database_url, tmp_path):
    port = free_port()
    env = {**clean_environ(), "DATABASE_URL": database_url,
           "PAGERPAL_INSTANCE_PATH": str(tmp_path / "instance"),
           "SECRET_KEY": "gunicorn-test-placeholder-secret-0123456789", "METRICS": "open",
           "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2",
           # Every worker is replaced after 4 requests: counts of exited workers must still add up.
           "GUNICORN_MAX_REQUESTS": "4", "GUNICORN_MAX_REQUESTS_JITTER": "0", "LOG_LEVEL": "INFO"}
    log_path = tmp_path / "gunicorn.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        config = str(PROJECT_ROOT / "deploy" / "gunicorn.conf.py")
        server = subprocess.Popen([str(BIN / "gunicorn"), "--config", config, "pagerpal_web:create_app()"],
                                  cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(f"{base}/health")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.2)

        sent = 10
        for i in range(sent):
            status, _ = request(f"{base}/api/v1/alerts?api_key=secret-in-query-string", method="POST",
                                body=b'{"title": "x"}', headers={"Content-Type": "application/json",
                                                                  "X-Request-ID": f"ops-test-{i}"})
            assert status == 401
        for _ in range(3):
            status, text = request(f"{base}/metrics")
            assert status == 200
            counted = counter(text, "pagerpal_alerts_received_total", source="unknown", result="unauthorized")
            assert counted == sent
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=45)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        print(log_path.read_text()[-6000:])  # shown by pytest when the test fails

    output = log_path.read_text()
    assert "secret-in-query-string" not in output
    access = [json.loads(line) for line in output.splitlines()
              if line.startswith("{") and '"gunicorn.access"' in line]
    alerts = {entry["request_id"]: entry for entry in access if entry["path"] == "/api/v1/alerts"}
    assert set(alerts) == {f"ops-test-{i}" for i in range(sent)}
    assert all(entry["status"] == 401 and entry["method"] == "POST" for entry in alerts.values())
    # At most 4 requests per process: the alerts alone were served by at least 3 processes.
    assert len({entry["pid"] for entry in alerts.values()}) >= 3
    assert server.returncode == 0
