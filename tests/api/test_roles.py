"""Role matrix: every management route × (no auth, viewer, responder, admin) → expected status."""

from __future__ import annotations

import re

import pytest

from pagerpal_web.auth import ROLE_RANK, SAFE_METHODS
from tests.api.seed import seed
from tests.api.test_openapi import app_operations
from tests.web.conftest import basic

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")

IDENTITIES = ("none", "viewer", "responder", "admin")
# Routes open to the user themselves or an admin: the seeded user is none of the callers, so admin.
OWNER_OR_ADMIN = {"api.read_notification_rules", "api.replace_notification_rules"}


def expected_role(app, method: str, endpoint: str) -> str:
    if endpoint in OWNER_OR_ADMIN:
        return "admin"
    view = app.view_functions[endpoint]
    return getattr(view, "min_role", None) or ("viewer" if method in SAFE_METHODS else "admin")


def test_every_route_for_every_role(app, client, make_account):
    ids = seed(app)
    headers = {"none": {}}
    headers.update({role: basic(make_account(role=role).email) for role in IDENTITIES[1:]})
    routes = sorted((method, path, endpoint) for (method, path), endpoint in app_operations(app).items()
                    if endpoint.startswith("api."))
    assert len(routes) > 60
    # Reads first and deletes last, so each call still finds the seeded rows it names.
    routes.sort(key=lambda r: {"GET": 0, "PATCH": 1, "POST": 1, "PUT": 1, "DELETE": 2}[r[0]])
    mismatches = []
    seen = {"401": 0, "403": 0, "allowed": 0}
    for method, path, endpoint in routes:
        url = "/api/v1" + re.sub(r"{(\w+)}", lambda m: str(ids[m.group(1)]), path)
        needed = expected_role(app, method, endpoint)
        for identity in IDENTITIES:
            response = client.open(url, method=method, headers=headers[identity], json={})
            if identity == "none":
                expected = "401"
            elif ROLE_RANK[identity] < ROLE_RANK[needed]:
                expected = "403"
            else:
                expected = "allowed"
            got = str(response.status_code) if response.status_code in (401, 403) else "allowed"
            seen[got] += 1
            if got != expected or response.status_code >= 500:
                body = response.get_data(as_text=True)[:200]
                mismatches.append((method, path, identity, response.status_code, body))
            if got == "403":
                assert needed in response.json["error"]["message"]
    assert mismatches == []
    assert min(seen.values()) > 10, seen  # each outcome was really exercised
