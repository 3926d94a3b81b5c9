"""The OpenAPI document: valid 3.1, and in step with the routes the app really serves."""

from __future__ import annotations

import re

import pytest

from pagerpal_web.api.openapi import build_openapi
from pagerpal_web.auth import SAFE_METHODS

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")

METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}


def app_operations(app) -> dict[tuple[str, str], str]:
    """(method, OpenAPI path relative to /api/v1) → endpoint, for every route under /api/v1."""
    operations = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule[len("/api/v1"):])
        for method in rule.methods & METHODS:
            operations[(method, path)] = rule.endpoint
    return operations


def documented_operations() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in build_openapi()["paths"].items()
            for method in item if method.upper() in METHODS}


def test_every_route_is_documented_and_nothing_else(app):
    served = set(app_operations(app))
    documented = documented_operations()
    assert sorted(served - documented) == [], "routes missing from api/openapi.py"
    assert sorted(documented - served) == [], "documented operations the app does not serve"


def test_documented_roles_match_the_views(app):
    """`x-min-role` says what the guard enforces: the view's declared role, else viewer/admin by method."""
    doc = build_openapi()["paths"]
    for (method, path), endpoint in app_operations(app).items():
        if not endpoint.startswith("api."):
            continue
        view = app.view_functions[endpoint]
        expected = getattr(view, "min_role", None) or ("viewer" if method in SAFE_METHODS else "admin")
        assert doc[path][method.lower()]["x-min-role"] == expected, (method, path)


def test_every_operation_documents_its_errors_and_bodies():
    for path, item in build_openapi()["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            assert any(s.startswith("2") for s in responses), (method, path)
            assert any(s.startswith("4") for s in responses), (method, path)
            if "{" in path and "x-min-role" in operation:
                assert "404" in responses, (method, path)
            if "requestBody" in operation:
                assert {"400", "422"} <= set(responses), (method, path)


def test_document_is_valid_openapi_3_1_and_served(client, admin):
    import schemathesis

    response = client.get("/api/v1/openapi.json", headers=admin)
    assert response.status_code == 200
    assert response.json["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(response.json)
    operations = [result.ok() for result in schema.get_all_operations()]  # .ok() raises on a bad operation
    assert len(operations) == len(documented_operations())


@pytest.mark.parametrize("headers", [None, {"Authorization": "Basic bm9ib2R5Om5vcGU="}])
def test_document_needs_an_account(client, headers):
    assert client.get("/api/v1/openapi.json", headers=headers).status_code == 401
