"""The README's alert-ingestion curl examples (every webhook format), run with bash and curl
against a live server, each with a real alert source key in place of `<alert-source-key>`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pagerpal_core.models import Incident
from pagerpal_core.services.alert_sources import create_alert_source
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")

README = Path(__file__).resolve().parents[2] / "README.md"
PLACEHOLDER = "<alert-source-key>"


def ingestion_examples() -> list[str]:
    """The ```sh blocks of the "## Alert ingestion" section that send something with curl."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Alert ingestion\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [block for block in blocks if "curl " in block]


def split_commands(block: str) -> list[str]:
    """Each curl command of a block (comment lines dropped), continuation lines included."""
    lines = [line for line in block.splitlines() if not line.lstrip().startswith("#")]
    commands, current = [], []
    for line in lines:
        if line.startswith("curl ") and current:
            commands.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        commands.append("\n".join(current))
    return commands


def test_readme_documents_every_webhook_format():
    text = "\n".join(ingestion_examples())
    for path in ("/api/v1/alerts", "/webhooks/grafana", "/webhooks/alertmanager",
                 "/webhooks/cloudwatch", "/webhooks/pagerduty"):
        assert path in text, f"no curl example for {path}"


@pytest.mark.skipif(not shutil.which("curl"), reason="needs curl")
def test_readme_webhook_curl_examples_work(app, live_server):
    with app.app_context():
        # The README's SNS example is an unsigned envelope: it works against a key-only source.
        key = create_alert_source(db.session, name="readme", sns_verification="key-only", now=utcnow()).key
        db.session.commit()
    origin = live_server.url.split("://", 1)[1]
    commands = [command for block in ingestion_examples() for command in split_commands(block)]
    assert len(commands) >= 6
    for command in commands:
        command = (command.replace(PLACEHOLDER, key)
                   .replace("https://pagerpal.example.com", live_server.url)
                   .replace("127.0.0.1:8000", origin))
        result = subprocess.run(["bash", "-c", command + " -w '\\n%{http_code}'"],
                                capture_output=True, text=True, timeout=60)
        body, _, status = result.stdout.rpartition("\n")
        assert result.returncode == 0 and status.startswith("2"), (command, result.stdout, result.stderr)
        json.loads(body)
    with app.app_context():
        titles = {incident.title for incident in db.session.query(Incident)}
    # One incident per format (the generic one was opened and resolved by its recovery).
    assert len(titles) >= 5, titles
