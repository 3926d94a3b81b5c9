"""One table of webhook paths: every documented path is served, and operators are shown the same one."""

from __future__ import annotations

import pytest

from pagerpal_core.models import AlertSource
from pagerpal_core.payloads import PARSERS
from pagerpal_core.settings import PROJECT_ROOT
from pagerpal_web.api.alert_sources import webhook_details
from pagerpal_web.extensions import db
from pagerpal_web.webhooks.alerts import FORMATS, WEBHOOK_PATHS

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


def test_every_parser_has_one_endpoint_and_the_readme_documents_it():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert set(FORMATS) == set(PARSERS)
    for kind, path in WEBHOOK_PATHS.items():
        assert f"`POST {path}`" in readme, kind


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_each_path_and_alias_is_an_ingestion_endpoint(client, kind):
    fmt = FORMATS[kind]
    for path in (fmt.path, *fmt.aliases):
        response = client.post("/api/v1" + path, json={"title": "no key"})
        assert response.status_code in (400, 401), (path, response.status_code)  # PagerDuty: its own 400


def test_the_api_shows_the_documented_path(make_source, app):
    src = make_source(name="pd", kind="pagerduty")
    with app.test_request_context():
        details = webhook_details(db.session.get(AlertSource, src.id))
    assert details["url"].endswith("/api/v1/webhooks/pagerduty")  # not the v2/enqueue alias
