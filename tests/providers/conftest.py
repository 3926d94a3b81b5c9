"""Fixtures for delivery tests: the fake Infobip and SMTP servers, and sender settings."""

from __future__ import annotations

import socket

import pytest

from pagerpal_core.settings import Settings
from tests.fakes.infobip import FakeInfobip
from tests.fakes.smtp import FakeSMTP

API_KEY = "ib-test-key-0f3a9c1d2e4b5a6978"
SMTP_PASSWORD = "smtp-test-password-7d1e2f"
RECEIPT_TOKEN = "receipt-test-token-5c6d7e8f9a"


@pytest.fixture
def infobip():
    with FakeInfobip(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def smtp_server():
    with FakeSMTP() as fake:
        yield fake


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def provider_settings(*, infobip_url: str = "", smtp_port: int = 0, **extra) -> Settings:
    """Settings with every provider configured against the given local servers."""
    values = {
        "INFOBIP_BASE_URL": infobip_url, "INFOBIP_API_KEY": API_KEY,
        "INFOBIP_SMS_SENDER": "PagerPal", "INFOBIP_WHATSAPP_SENDER": "+441134960000",
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port or 2525), "SMTP_FROM": "pagerpal@example.test",
        "SMTP_SECURITY": "none", "PROVIDER_TIMEOUT_SECONDS": "5",
        "PAGERPAL_BASE_URL": "http://127.0.0.1:8000", "DATABASE_URL": "sqlite:///:memory:",
    }
    values.update({k: str(v) for k, v in extra.items()})
    return Settings.from_env(environ={}, overrides=values)
