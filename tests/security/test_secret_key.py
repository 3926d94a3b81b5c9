"""Production refuses every SECRET_KEY the repository publishes and keys that are not random,
and an open Infobip receipts endpoint (issue 12, findings 2 and 7)."""

from __future__ import annotations

import logging
import re

import pytest

from pagerpal_core.settings import (
    DEFAULT_SECRET_KEY,
    PLACEHOLDER_SECRET_KEYS,
    PROJECT_ROOT,
    ConfigError,
    Settings,
    secret_key_problem,
)

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")

# Where an operator copies a SECRET_KEY from.
PUBLISHED_FILES = ("docker-compose.yml", ".env.example", "README.md")
# SECRET_KEY=value (env files, shell), SECRET_KEY: value (YAML), ${SECRET_KEY:-value} (compose
# default), and the README's settings table: | `SECRET_KEY` | `value` |.
VALUE_PATTERNS = [
    re.compile(r"\bSECRET_KEY=([\"']?)(?P<value>[^\s\"'$]+)\1"),
    re.compile(r"^\s*SECRET_KEY:\s*([\"']?)(?P<value>[^\s\"'$#{]+)\1\s*$", re.MULTILINE),
    re.compile(r"\$\{SECRET_KEY:?-(?P<value>[^}]*)\}"),
    re.compile(r"\|\s*`SECRET_KEY`\s*\|\s*`(?P<value>[^`]+)`"),
]
GOOD_KEY = "Yt7-pQ2xV9mK4wL8nB3cR6dF1gH5jS0aZ_eU"


def published_secret_keys() -> dict[str, str]:
    """Every SECRET_KEY value written in the published files: {value: file}."""
    found = {}
    for name in PUBLISHED_FILES:
        text = (PROJECT_ROOT / name).read_text(encoding="utf-8")
        for pattern in VALUE_PATTERNS:
            for match in pattern.finditer(text):
                found[match.group("value")] = name
    return found


def production(**env) -> Settings:
    return Settings.from_env(environ={}, overrides={
        "ENVIRONMENT": "production", "SECRET_KEY": GOOD_KEY, "SESSION_COOKIE_SECURE": "true",
        "ALLOWED_ORIGINS": "https://pagerpal.example.com", "PAGERPAL_INSTANCE_PATH": "/nonexistent", **env})


def test_every_published_secret_key_is_refused_in_production():
    published = published_secret_keys()
    assert DEFAULT_SECRET_KEY in published and "<long-random-secret>" in published, published
    # docker-compose.yml shipped this default before SECRET_KEY became required.
    values = {**published, "placeholder-secret-key-replace-before-real-use": "docker-compose.yml (old)"}
    for value, where in values.items():
        assert value in PLACEHOLDER_SECRET_KEYS, f"{value!r} from {where} is not in PLACEHOLDER_SECRET_KEYS"
        problems = production(SECRET_KEY=value).production_problems()
        assert any("SECRET_KEY" in problem for problem in problems), (value, where)


def test_compose_ships_no_secret_key_default():
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert "${SECRET_KEY:?" in text
    assert not [value for value, where in published_secret_keys().items() if where == "docker-compose.yml"]


@pytest.mark.parametrize("key", [
    "x" * 40,                                   # one character
    "abababababababababababababababab12",       # few distinct characters
    "correcthorse" * 3,                         # a word repeated
    "Secret-Secret-Secret-Secret-Secret-",      # a word repeated, case aside
    "PLACEHOLDER-SECRET-KEY-REPLACE-BEFORE-REAL-USE",  # a placeholder in other case
    "0123456789abcdef0123",                     # too short
])
def test_low_entropy_keys_are_refused(key):
    assert secret_key_problem(key)
    assert any("SECRET_KEY" in problem for problem in production(SECRET_KEY=key).production_problems())


@pytest.mark.parametrize("key", [GOOD_KEY, "9f86d081884c7d659a2feaa0c55ad015",  # secrets.token_hex(16)
                                 "ops-test-placeholder-secret-0123456789abcdef"])
def test_random_looking_keys_pass(key):
    assert secret_key_problem(key) is None


def test_production_app_refuses_a_published_key(tmp_path):
    from pagerpal_web import create_app

    with pytest.raises(ConfigError) as err:
        create_app({"ENVIRONMENT": "production", "SECRET_KEY": "placeholder-secret-key-replace-before-real-use",
                    "SESSION_COOKIE_SECURE": "true", "ALLOWED_ORIGINS": "https://pagerpal.example.com",
                    "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "PAGERPAL_INSTANCE_PATH": str(tmp_path)})
    assert "placeholder published" in str(err.value)


def test_production_refuses_infobip_without_a_receipt_token(tmp_path):
    infobip = {"INFOBIP_BASE_URL": "https://api.infobip.example", "INFOBIP_API_KEY": "infobip-api-key"}
    problems = production(**infobip).production_problems()
    assert any("INFOBIP_RECEIPT_TOKEN" in problem for problem in problems)
    assert production(**infobip, INFOBIP_RECEIPT_TOKEN="receipt-token-value").production_problems() == []
    assert production().production_problems() == []  # no Infobip: nothing to protect

    from pagerpal_web import create_app

    with pytest.raises(ConfigError) as err:
        create_app({"ENVIRONMENT": "production", "SECRET_KEY": GOOD_KEY, "SESSION_COOKIE_SECURE": "true",
                    "ALLOWED_ORIGINS": "https://pagerpal.example.com", **infobip,
                    "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "PAGERPAL_INSTANCE_PATH": str(tmp_path)})
    assert "INFOBIP_RECEIPT_TOKEN" in str(err.value)


def test_open_receipts_endpoint_outside_production_still_works_and_warns_once(make_app, caplog):
    app = make_app(INFOBIP_BASE_URL="https://api.infobip.example", INFOBIP_API_KEY="infobip-api-key")
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="pagerpal.receipts"):
        for _ in range(3):
            response = client.post("/api/v1/notifications/infobip/receipts", json={"results": []})
            assert response.status_code == 200
    warnings = [r for r in caplog.records if "INFOBIP_RECEIPT_TOKEN is not set" in r.getMessage()]
    assert len(warnings) == 1


def test_check_command_reports_a_published_key_and_an_open_receipts_endpoint(make_app):
    app = make_app(SECRET_KEY="placeholder-secret-key-replace-before-real-use",
                   INFOBIP_BASE_URL="https://api.infobip.example", INFOBIP_API_KEY="infobip-api-key")
    result = app.test_cli_runner().invoke(args=["pagerpal", "check"])
    assert result.exit_code == 1
    lines = {line.split()[1]: line for line in result.output.splitlines() if line[:4] in ("ok  ", "warn", "fail")}
    assert lines["secret_key"].startswith("fail") and "placeholder published" in lines["secret_key"]
    assert lines["infobip_receipts"].startswith("fail") and "INFOBIP_RECEIPT_TOKEN" in lines["infobip_receipts"]
