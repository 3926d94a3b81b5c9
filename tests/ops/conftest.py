"""Helpers for the operations tests: run the real `flask` / `pagerpal-worker` executables."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from pagerpal_core.settings import PROJECT_ROOT, Settings

BIN = Path(sys.executable).parent
# A production configuration that passes every configuration check (placeholders only).
GOOD_PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": "ops-test-placeholder-secret-0123456789abcdef",
    "SESSION_COOKIE_SECURE": "true",
    "PAGERPAL_BASE_URL": "https://pagerpal.example.com",
    "ALLOWED_ORIGINS": "https://pagerpal.example.com",
    "METRICS": "token:ops-test-placeholder-token",
}


def clean_environ() -> dict:
    """os.environ without any PagerPal setting, so a developer's shell cannot leak into a test."""
    names = {f.metadata["env"] for f in fields(Settings)} | {"PROMETHEUS_MULTIPROC_DIR", "FLASK_APP"}
    return {key: value for key, value in os.environ.items() if key not in names}


@pytest.fixture
def run_cli(tmp_path):
    """Run `flask --app pagerpal_web ...` (or another venv executable) in a clean environment."""

    def run(args, *, env: dict, executable="flask", input_text=None, timeout=60):
        command = [str(BIN / executable)]
        if executable == "flask":
            command += ["--app", "pagerpal_web"]
        full_env = {**clean_environ(), "PAGERPAL_INSTANCE_PATH": str(tmp_path / "instance"),
                    "LOG_LEVEL": "WARNING", **env}
        # cwd is the temp dir: a developer's .env in the checkout must not be read.
        return subprocess.run(command + list(args), env=full_env, cwd=tmp_path, input=input_text,
                              capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture
def project_root() -> Path:
    return PROJECT_ROOT
