"""The README's Management API curl examples, run verbatim with bash, curl and jq against a live server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pagerpal_core.models import Incident, User
from pagerpal_web.extensions import db
from tests.factories import PASSWORD

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_script() -> str:
    """Every ```sh block of the "## Management API" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Management API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 6, "the README lost its curl examples"
    return "\n".join(blocks)


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
def test_readme_curl_examples_work(app, live_server, make_account):
    admin = make_account(role="admin")
    script = "set -euo pipefail\n" + readme_script() + '\necho "ids: $RESPONDER $INCIDENT"\n'
    env = {**os.environ, "PAGERPAL": f"{live_server.url}/api/v1", "ADMIN": f"{admin.email}:{PASSWORD}"}
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "Ada Lovelace" in lines                    # on call now in the new schedule
    assert "Disk full on db-1" in lines               # the alert opened an incident
    assert "acknowledged" in lines                    # the acknowledge call
    assert any("Ada Lovelace: Acknowledged" in line for line in lines)  # on the timeline, as Ada
    assert "resolved" in lines                        # the resolve call
    responder_id, incident_id = (int(x) for x in lines[-1].split()[1:])
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        assert incident.status == "resolved" and incident.acknowledged_by_id == responder_id
        assert not db.session.get(User, responder_id).can_log_in
