"""Settings: typed parsing, clear errors naming the variable, production refusals."""

from __future__ import annotations

import pytest

from pagerpal_core.settings import ConfigError, Settings


def parse(**env):
    return Settings.from_env(environ={"PAGERPAL_INSTANCE_PATH": "/tmp/pp-inst", **env})


def test_defaults_are_safe_local_mode():
    s = parse()
    assert s.environment == "development"
    assert s.notification_sending_enabled is False
    assert s.database_url == "sqlite:////tmp/pp-inst/pagerpal.db"
    assert s.alert_source_rate_limit_capacity == 120
    assert s.alert_source_rate_limit_refill_per_second == 2.0


@pytest.mark.parametrize("env, name", [
    ({"NOTIFICATION_SENDING_ENABLED": "maybe"}, "NOTIFICATION_SENDING_ENABLED"),
    ({"SMTP_PORT": "seventy"}, "SMTP_PORT"),
    ({"SMTP_PORT": "70000"}, "SMTP_PORT"),
    ({"ALERT_SOURCE_RATE_LIMIT_CAPACITY": "0"}, "ALERT_SOURCE_RATE_LIMIT_CAPACITY"),
    ({"ALERT_SOURCE_RATE_LIMIT_REFILL_PER_SECOND": "-1"}, "ALERT_SOURCE_RATE_LIMIT_REFILL_PER_SECOND"),
    ({"ENVIRONMENT": "staging"}, "ENVIRONMENT"),
    ({"PAGERPAL_BASE_URL": "pagerpal.local"}, "PAGERPAL_BASE_URL"),
    ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
    ({"WORKER_POLL_INTERVAL": "fast"}, "WORKER_POLL_INTERVAL"),
])
def test_bad_values_name_the_variable(env, name):
    with pytest.raises(ConfigError) as err:
        parse(**env)
    assert any(name in problem for problem in err.value.problems)


def test_every_bad_variable_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse(SMTP_PORT="x", ESCALATION_WORKER_ENABLED="perhaps")
    assert len(err.value.problems) == 2


@pytest.mark.parametrize("url", ["postgres://u:p@db:5432/pp", "postgresql://u:p@db:5432/pp"])
def test_postgres_urls_are_accepted(url):
    assert parse(DATABASE_URL=url).database_url == "postgresql+psycopg2://u:p@db:5432/pp"


def test_dotenv_is_read_and_environment_wins(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("# comment\nSMTP_HOST=from-dotenv\nexport SMTP_FROM='a@b.example'\n"
                                   "SMTP_USER=dotenv-user\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SMTP_USER", "env-user")
    s = Settings.from_env()
    assert (s.smtp_host, s.smtp_from, s.smtp_user) == ("from-dotenv", "a@b.example", "env-user")


def test_production_problems_list_every_issue():
    s = parse(ENVIRONMENT="production", ALLOWED_ORIGINS="*")
    problems = s.production_problems()
    assert any("SECRET_KEY" in p for p in problems)
    assert any("SESSION_COOKIE_SECURE" in p for p in problems)
    assert any("ALLOWED_ORIGINS" in p for p in problems)


def test_secret_values_include_database_password():
    s = parse(DATABASE_URL="postgresql://u:hunter2hunter2@db/pp", SMTP_PASSWORD="smtp-secret-value")
    assert "hunter2hunter2" in s.secret_values() and "smtp-secret-value" in s.secret_values()


def test_production_app_refuses_to_start_and_names_each_problem(tmp_path):
    """Defaults in production: default secret, insecure cookies, wildcard origins, unmigrated DB."""
    from pagerpal_web import create_app

    with pytest.raises(ConfigError) as err:
        create_app({"ENVIRONMENT": "production", "ALLOWED_ORIGINS": "*",
                    "DATABASE_URL": f"sqlite:///{tmp_path}/empty.db",
                    "PAGERPAL_INSTANCE_PATH": str(tmp_path)})
    text = str(err.value)
    for word in ("SECRET_KEY", "SESSION_COOKIE_SECURE", "ALLOWED_ORIGINS", "migration head"):
        assert word in text


def test_production_app_starts_when_configured(database_url, tmp_path):
    from pagerpal_web import create_app

    app = create_app({"ENVIRONMENT": "production", "ALLOWED_ORIGINS": "https://pagerpal.example.com",
                      "SESSION_COOKIE_SECURE": "true", "SECRET_KEY": "k3Jq9-vT2mXw8Lz0_bNc4RfY7hGs1PdE6uAo5i",
                      "DATABASE_URL": database_url, "PAGERPAL_INSTANCE_PATH": str(tmp_path)})
    assert app.test_client().get("/health").status_code == 200
    from pagerpal_web.extensions import db

    with app.app_context():
        db.engine.dispose()


def test_gunicorn_serving_the_factory_refuses_an_unsafe_production_config(tmp_path):
    """`gunicorn "pagerpal_web:create_app()"` (DESIGN.md, no config file) exits naming the problems."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "ENVIRONMENT": "production", "ALLOWED_ORIGINS": "*",
           "DATABASE_URL": f"sqlite:///{tmp_path}/empty.db", "PAGERPAL_INSTANCE_PATH": str(tmp_path),
           "PYTHONPATH": str(root)}
    env.pop("SECRET_KEY", None)
    # cwd=tmp_path: gunicorn reads ./gunicorn.conf.py when present; this run must use none.
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", "--workers", "1",
                             "pagerpal_web:create_app()"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for word in ("SECRET_KEY", "SESSION_COOKIE_SECURE", "ALLOWED_ORIGINS", "migration head"):
        assert word in output
