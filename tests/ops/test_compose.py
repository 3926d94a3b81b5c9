"""docker-compose.yml parses (`docker compose config` needs no engine) and has the expected shape."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from pagerpal_core.settings import PROJECT_ROOT


def compose_command() -> list[str] | None:
    """`docker compose` (the plugin) or the standalone `docker-compose`, whichever works."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_is_valid():
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    # SECRET_KEY has no default: an operator's `.env` gives it (here, the environment).
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(PROJECT_ROOT),
           "SECRET_KEY": "compose-test-secret-Jx8q2Lr5vN0wT3kZ7bYc9"}
    result = subprocess.run(command + ["--file", "docker-compose.yml", "config"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for service in ("db:", "migrate:", "web:", "worker:"):
        assert f"\n  {service}" in text, f"service {service} missing"
    assert "service_completed_successfully" in text  # web and worker wait for the migration
    assert "pg_isready" in text
    assert "NOTIFICATION_SENDING_ENABLED: 'false'" in text or 'NOTIFICATION_SENDING_ENABLED: "false"' in text


def test_compose_refuses_to_start_without_a_secret_key():
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(PROJECT_ROOT)}
    result = subprocess.run(command + ["--file", "docker-compose.yml", "config"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0
    assert "set SECRET_KEY in .env" in result.stderr


def test_compose_defaults_hold_placeholders_only():
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert "placeholder" in text
    # The database password has a placeholder default; SECRET_KEY has none (it is required).
    assert "${POSTGRES_PASSWORD:-placeholder" in text
    assert "${SECRET_KEY:?" in text and "${SECRET_KEY:-" not in text


def test_procfile_names_the_three_processes():
    lines = dict(line.split(":", 1) for line in (PROJECT_ROOT / "Procfile").read_text().splitlines() if line)
    assert set(lines) == {"release", "web", "worker"}
    assert "db upgrade" in lines["release"]
    assert "gunicorn" in lines["web"] and "deploy/gunicorn.conf.py" in lines["web"]
    assert lines["worker"].strip() == "pagerpal-worker"


def test_gunicorn_config_reads_workers_from_the_environment():
    script = ("import runpy, json; c = runpy.run_path('deploy/gunicorn.conf.py'); "
              "print(json.dumps({k: c[k] for k in ('bind', 'workers', 'graceful_timeout', 'timeout')}))")
    import sys

    env = {"PATH": "/usr/bin:/bin", "GUNICORN_WORKERS": "3", "GUNICORN_BIND": "127.0.0.1:9999",
           "GUNICORN_GRACEFUL_TIMEOUT": "12"}
    out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"bind": "127.0.0.1:9999", "workers": 3, "graceful_timeout": 12,
                                      "timeout": 30}
    bad = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         env={**env, "GUNICORN_WORKERS": "many"}, timeout=60)
    assert bad.returncode != 0 and "GUNICORN_WORKERS must be an integer" in bad.stderr


@pytest.mark.parametrize("unit", sorted(p.name for p in (PROJECT_ROOT / "deploy").glob("*.service")))
def test_systemd_units_parse(unit, tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    text = (PROJECT_ROOT / "deploy" / unit).read_text()
    assert "EnvironmentFile=" in text and "User=pagerpal" in text and "NoNewPrivileges=true" in text
    # The install paths do not exist here: point the executables at one that does.
    copy = tmp_path / unit
    copy.write_text(text.replace("/opt/pagerpal/.venv/bin/", "/usr/bin/env "))
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True,
                            timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if unit in line and ("Unknown" in line or "Failed" in line or "Invalid" in line
                                     or "not executable" in line)]
    assert not problems, "\n".join(problems)
