"""docker-compose.yml parses (`docker compose config` needs no engine) and has the expected shape."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


COMPOSE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
SAMPLE_SECRET = "compose-test-secret-Jx8q2Lr5vN0wT3kZ7bYc9"


def documented_names() -> list[str]:
    """Every setting named in .env.example (commented-out examples included)."""
    text = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8")
    return sorted(set(re.findall(r"^(?:#\s*)?([A-Z][A-Z0-9_]+)=", text, flags=re.M)))


def render(tmp_path, dotenv: dict[str, str], *, check: bool = True) -> subprocess.CompletedProcess:
    """`config` of a copy of docker-compose.yml beside `dotenv` written as its .env (as an operator has it)."""
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    shutil.copy(PROJECT_ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in dotenv.items()))
    result = subprocess.run(command + ["--file", "docker-compose.yml", "--profile", "sqlite", "config"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**COMPOSE_ENV, "HOME": str(tmp_path)})
    if check:
        assert result.returncode == 0, result.stderr
    return result


def service_env(text: str) -> dict[str, dict[str, str]]:
    """Each service's final environment from the rendered config."""
    return {name: {k: str(v) for k, v in (service.get("environment") or {}).items()}
            for name, service in yaml.safe_load(text)["services"].items()}


def test_every_documented_variable_in_env_reaches_web_and_worker(tmp_path):
    names = documented_names()
    assert len(names) > 30 and "INFOBIP_WHATSAPP_TEMPLATE" in names and "SMTP_SECURITY" in names
    sample = {name: f"sample-{name.lower()}" for name in names}
    sample["SECRET_KEY"] = SAMPLE_SECRET
    envs = service_env(render(tmp_path, sample).stdout)
    for service in ("web", "worker", "migrate", "sqlite-web", "sqlite-worker"):
        missing = {n for n in names if n != "DATABASE_URL" and envs[service].get(n) != sample[n]}
        assert missing == set(), (service, missing)
    # DATABASE_URL from .env (an external database such as RDS) reaches the PostgreSQL services;
    # the sqlite profile keeps its own file on the volume.
    for service in ("web", "worker", "migrate"):
        assert envs[service]["DATABASE_URL"] == sample["DATABASE_URL"]
    assert envs["sqlite-web"]["DATABASE_URL"] == envs["sqlite-worker"]["DATABASE_URL"] == "sqlite:////data/pagerpal.db"


def test_database_url_defaults_to_the_bundled_database(tmp_path):
    envs = service_env(render(tmp_path, {"SECRET_KEY": SAMPLE_SECRET, "POSTGRES_PASSWORD": "p@ss/word"}).stdout)
    for service in ("web", "worker", "migrate"):
        # Not set: the entrypoint builds it (compose cannot nest defaults portably).
        assert "DATABASE_URL" not in envs[service]
        assert envs[service]["POSTGRES_PASSWORD"] == "p@ss/word"
    assert envs["db"]["POSTGRES_PASSWORD"] == "p@ss/word"
    entrypoint = PROJECT_ROOT / "deploy" / "compose-entrypoint.sh"
    base = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    default = subprocess.run([str(entrypoint), "sh", "-c", 'echo "$DATABASE_URL"'], capture_output=True, text=True,
                             env={**base, "POSTGRES_PASSWORD": "p@ss/word"}, timeout=30)
    assert default.stdout.strip() == "postgresql://pagerpal:p%40ss%2Fword@db:5432/pagerpal", default.stderr
    given = subprocess.run([str(entrypoint), "sh", "-c", 'echo "$DATABASE_URL"'], capture_output=True, text=True,
                           env={**base, "DATABASE_URL": "postgresql://u:p@rds.example.test/pp"}, timeout=30)
    assert given.stdout.strip() == "postgresql://u:p@rds.example.test/pp"


def test_compose_file_is_valid(tmp_path):
    result = render(tmp_path, {"SECRET_KEY": SAMPLE_SECRET})
    text = result.stdout
    for service in ("db:", "migrate:", "web:", "worker:"):
        assert f"\n  {service}" in text, f"service {service} missing"
    assert "service_completed_successfully" in text  # web and worker wait for the migration
    assert "pg_isready" in text
    assert "NOTIFICATION_SENDING_ENABLED: 'false'" in text or 'NOTIFICATION_SENDING_ENABLED: "false"' in text


def test_compose_refuses_to_start_without_a_secret_key(tmp_path):
    result = render(tmp_path, {"ENVIRONMENT": "development"}, check=False)
    assert result.returncode != 0
    assert "set SECRET_KEY in .env" in result.stderr


def test_compose_defaults_hold_placeholders_only():
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert "placeholder" in text
    # The database password has a placeholder default; SECRET_KEY has none (it is required).
    assert "${POSTGRES_PASSWORD:-placeholder" in text
    assert "${SECRET_KEY:?" in text and "${SECRET_KEY:-" not in text
    # Provider secrets come from .env only: no default of any kind in the file.
    for name in ("SMTP_PASSWORD", "INFOBIP_API_KEY", "INFOBIP_RECEIPT_TOKEN", "INFOBIP_INBOUND_TOKEN"):
        assert f"${{{name}" not in text, name


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
