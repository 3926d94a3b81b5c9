"""`flask pagerpal check`: the readiness checklist, through the real CLI and the core function."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from pagerpal_core.models import JobStatus
from pagerpal_core.services.readiness import FAIL, OK, WARN, has_failures, run_readiness_checks
from pagerpal_core.settings import Settings
from pagerpal_core.timeutil import utcnow
from tests.factories import make_user
from tests.ops.conftest import GOOD_PRODUCTION

LINE = re.compile(r"^(ok|warn|fail)\s+(\w+)\s+(.+)$")


def parse_lines(output: str) -> dict[str, tuple[str, str]]:
    checks = {}
    for line in output.splitlines():
        match = LINE.match(line.strip())
        if match:
            assert match.group(2) not in checks, f"check {match.group(2)} printed twice"
            checks[match.group(2)] = (match.group(1), match.group(3))
    return checks


# The failures here are configuration, and the JSON test is about output: neither depends on the
# database. The CLI's database checks run on both backends in the good-configuration test below.
@pytest.mark.backends("sqlite")
def test_check_fails_on_production_defaults_with_one_line_per_problem(run_cli, database_url):
    result = run_cli(["pagerpal", "check"], env={"ENVIRONMENT": "production", "DATABASE_URL": database_url})
    assert result.returncode == 1, result.stdout + result.stderr
    checks = parse_lines(result.stdout)
    failed = {name for name, (status, _) in checks.items() if status == "fail"}
    assert failed == {"secret_key", "secure_cookies", "base_url", "admin", "worker_heartbeat",
                      "worker_leader"}, result.stdout
    assert checks["migrations"][0] == "ok"
    assert "SECRET_KEY is the default" in checks["secret_key"][1]
    assert "Traceback" not in result.stderr
    # The summary line counts the same failures.
    assert f"{len(failed)} failed" in result.stdout


def test_check_passes_on_a_good_production_config(run_cli, database_url, session):
    make_user(session, role="admin")
    session.commit()
    env = {**GOOD_PRODUCTION, "DATABASE_URL": database_url}
    worker = run_cli(["--once"], env=env, executable="pagerpal-worker")
    assert worker.returncode == 0, worker.stdout + worker.stderr

    result = run_cli(["pagerpal", "check"], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = parse_lines(result.stdout)
    assert {status for status, _ in checks.values()} <= {"ok", "warn"}
    assert checks["worker_leader"][0] == "ok" and "one leader" in checks["worker_leader"][1]
    assert checks["worker_heartbeat"][0] == "ok"
    assert checks["providers"][0] == "warn"  # sending disabled: safe mode is a warning, not a failure


@pytest.mark.backends("sqlite")
def test_check_json_output(run_cli, database_url):
    import json

    result = run_cli(["pagerpal", "check", "--json"], env={"DATABASE_URL": database_url})
    assert result.returncode == 1
    items = json.loads(result.stdout)
    assert {item["status"] for item in items} <= {"ok", "warn", "fail"}
    assert any(item["name"] == "environment" and item["status"] == "warn" for item in items)


def test_db_upgrade_runs_in_production_on_an_empty_database(run_cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {**GOOD_PRODUCTION, "DATABASE_URL": url}
    result = run_cli(["db", "upgrade"], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    check = run_cli(["pagerpal", "check"], env=env)
    assert parse_lines(check.stdout)["migrations"][0] == "ok"


def test_serving_still_refuses_an_unsafe_production_config(tmp_path):
    from pagerpal_core.settings import ConfigError
    from pagerpal_web import create_app

    with pytest.raises(ConfigError):
        create_app({"ENVIRONMENT": "production", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                    "PAGERPAL_INSTANCE_PATH": str(tmp_path)})


# --- the core function: worker leadership and freshness ----------------------------------

def good_settings(database_url: str, tmp_path) -> Settings:
    return Settings.from_env(environ={}, overrides={**GOOD_PRODUCTION, "DATABASE_URL": database_url,
                                                    "PAGERPAL_INSTANCE_PATH": str(tmp_path)})


def add_job(session, name, *, host, pid, beat, enabled=True, standbys=None):
    session.add(JobStatus(name=name, enabled=enabled, interval_seconds=1.0, leader_host=host,
                          leader_pid=pid, last_started_at=beat, run_count=1,
                          standby_instances=standbys or {}, updated_at=beat))
    session.flush()


def by_name(checks):
    return {check.name: check for check in checks}


def test_fresh_single_leader_with_standby_is_ok(session, database_url, tmp_path):
    now = utcnow()
    make_user(session, role="admin")
    add_job(session, "dispatch", host="web1", pid=10, beat=now, standbys={"web2:20": now.isoformat()})
    add_job(session, "escalate", host="web1", pid=10, beat=now)
    checks = by_name(run_readiness_checks(session, good_settings(database_url, tmp_path), now=now))
    assert checks["worker_heartbeat"].status == OK
    assert checks["worker_leader"].status == OK
    assert "web1:10" in checks["worker_leader"].message and "1 standby" in checks["worker_leader"].message
    assert not has_failures(list(checks.values()))


def test_two_leaders_fail(session, database_url, tmp_path):
    now = utcnow()
    add_job(session, "dispatch", host="web1", pid=10, beat=now)
    add_job(session, "escalate", host="web2", pid=20, beat=now)
    checks = by_name(run_readiness_checks(session, good_settings(database_url, tmp_path), now=now))
    assert checks["worker_leader"].status == FAIL
    assert "2 workers act as leader" in checks["worker_leader"].message


def test_stale_heartbeat_fails(session, database_url, tmp_path):
    now = utcnow()
    add_job(session, "dispatch", host="web1", pid=10, beat=now - timedelta(minutes=5))
    add_job(session, "disabled-step", host="web1", pid=10, beat=now - timedelta(hours=1), enabled=False)
    checks = by_name(run_readiness_checks(session, good_settings(database_url, tmp_path), now=now))
    assert checks["worker_heartbeat"].status == FAIL
    assert "dispatch" in checks["worker_heartbeat"].message
    assert "disabled-step" not in checks["worker_heartbeat"].message
    assert checks["worker_leader"].status == FAIL  # the only leader is stale


# Configuration checks read only the settings: one backend is enough.
@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("changes, name, status", [
    ({"SECRET_KEY": "short"}, "secret_key", FAIL),
    ({"SECRET_KEY": "placeholder-secret-key-replace-before-real-use"}, "secret_key", FAIL),
    ({"SECRET_KEY": "x" * 40}, "secret_key", FAIL),
    ({"SECRET_KEY": "pagerpal" * 5}, "secret_key", FAIL),
    ({"INFOBIP_BASE_URL": "https://api.infobip.example", "INFOBIP_API_KEY": "infobip-key"},
     "infobip_receipts", FAIL),
    ({"INFOBIP_BASE_URL": "https://api.infobip.example", "INFOBIP_API_KEY": "infobip-key",
      "INFOBIP_RECEIPT_TOKEN": "receipt-token-value"}, "infobip_receipts", OK),
    ({"ALLOWED_ORIGINS": "*"}, "allowed_origins", FAIL),
    ({"ALLOWED_ORIGINS": "http://pagerpal.example.com"}, "allowed_origins", WARN),
    ({"PAGERPAL_BASE_URL": "https://127.0.0.1:8000"}, "base_url", WARN),
    ({"NOTIFICATION_SENDING_ENABLED": "true"}, "providers", FAIL),
    ({"NOTIFICATION_SENDING_ENABLED": "true", "SMTP_HOST": "smtp.example.com",
      "SMTP_FROM": "pagerpal@example.com"}, "providers", OK),
    ({"METRICS": "open"}, "metrics", WARN),
    ({"ENVIRONMENT": "development"}, "environment", WARN),
])
def test_configuration_checks(session, database_url, tmp_path, changes, name, status):
    settings = Settings.from_env(environ={}, overrides={
        **GOOD_PRODUCTION, "DATABASE_URL": database_url, "PAGERPAL_INSTANCE_PATH": str(tmp_path), **changes})
    checks = by_name(run_readiness_checks(session, settings, now=utcnow()))
    assert checks[name].status == status, checks[name]


def test_unreachable_database_fails_once_and_skips_the_rest(tmp_path):
    from pagerpal_core.db import make_engine, make_session_factory

    url = f"sqlite:///{tmp_path / 'missing-dir' / 'nope.db'}"
    engine = make_engine(url)
    session = make_session_factory(engine)()
    try:
        checks = by_name(run_readiness_checks(session, good_settings(url, tmp_path), now=utcnow()))
    finally:
        session.close()
        engine.dispose()
    assert checks["database"].status == FAIL and "unreachable" in checks["database"].message
    for name in ("migrations", "admin", "worker_heartbeat", "worker_leader"):
        assert checks[name].status == FAIL and "not checked" in checks[name].message
