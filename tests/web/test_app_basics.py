"""Health, the common JSON error shape, body limits, request ids and log redaction."""

from __future__ import annotations

import json
import logging

import pytest

from pagerpal_core.logs import JsonFormatter
from pagerpal_core.security import redact
from tests.web.conftest import basic

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


def test_health_is_public(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_api_404_and_405_are_json(client, make_account):
    admin = make_account(role="admin")
    missing = client.get("/api/v1/does-not-exist")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    wrong_method = client.delete("/api/v1/system/jobs", headers=basic(admin.email))
    assert wrong_method.status_code == 405
    assert set(wrong_method.json["error"]) >= {"code", "message"}
    unknown_user = client.get("/api/v1/users/999999", headers=basic(admin.email))
    assert unknown_user.status_code == 404 and "999999" in unknown_user.json["error"]["message"]


def test_oversized_body_is_413_json(make_app, make_account):
    app = make_app(MAX_REQUEST_BYTES="2048")
    client = app.test_client()
    admin = make_account(role="admin")
    response = client.post("/api/v1/users", data="x" * 5000, content_type="application/json",
                           headers=basic(admin.email))
    assert response.status_code == 413
    assert response.json["error"]["code"] == "request_entity_too_large"


def test_malformed_json_and_wrong_types_are_4xx_and_write_nothing(client, make_account):
    admin = make_account(role="admin")
    auth = basic(admin.email)
    before = len(client.get("/api/v1/users", headers=auth).json["items"])
    cases = [
        ("{not json", 400), ("[1, 2]", 400), ("", 400),
        ('{"email": "x@y.test", "name": NaN}', 400), ('{"email": "x@y.test", "n": 1e400}', 400),
        (json.dumps({"email": 5}), 422), (json.dumps({"email": "x@y.test", "role": "king"}), 422),
        (json.dumps({"email": "x@y.test", "password": "short"}), 422),
        (json.dumps({"email": "x@y.test", "contact_methods": [{"channel": "sms", "destination": "12"}]}), 422),
        (json.dumps({"email": "x@y.test", "bogus": 1}), 422),
    ]
    for body, status in cases:
        response = client.post("/api/v1/users", data=body, content_type="application/json", headers=auth)
        assert response.status_code == status, (body, response.json)
        assert response.json["error"]["message"]
    assert len(client.get("/api/v1/users", headers=auth).json["items"]) == before


def test_duplicate_email_is_409(client, make_account):
    admin = make_account(role="admin")
    body = {"email": "dup@example.test", "name": "Dup"}
    assert client.post("/api/v1/users", json=body, headers=basic(admin.email)).status_code == 201
    again = client.post("/api/v1/users", json={**body, "email": "DUP@example.test"}, headers=basic(admin.email))
    assert again.status_code == 409 and again.json["error"]["fields"]["email"]


def test_request_id_is_reused_or_generated(client):
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32
    # Unsafe incoming ids are replaced rather than echoed into headers and logs.
    assert client.get("/health", headers={"X-Request-ID": "bad id\x7f"}).headers["X-Request-ID"] != "bad id\x7f"


def test_access_log_is_json_with_request_id_and_no_query_string(make_app, capsys):
    client = make_app().test_client()  # built inside the test so its log handler writes to capsys
    client.get("/health?api_key=ppk_supersecretvalue1234567890", headers={"X-Request-ID": "req-42"})
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("path") == "/health"]
    assert access and access[-1]["request_id"] == "req-42"
    assert "ppk_supersecretvalue" not in out


def test_redaction_of_configured_and_secret_looking_values():
    text = ("password=hunter22 Authorization: Basic YWRhOnNlY3JldHNlY3JldA== "
            "key ppk_ABCDEFGHIJKLMNOPQRSTUV token: abcdef postgresql://u:dbpass@h/db my-config-secret")
    cleaned = redact(text, ["my-config-secret"])
    for secret in ("hunter22", "YWRhOnNlY3JldHNlY3JldA==", "ppk_ABCDEFGHIJKLMNOPQRSTUV", "abcdef", "dbpass",
                   "my-config-secret"):
        assert secret not in cleaned


def test_json_formatter_redacts_messages_and_exceptions():
    formatter = JsonFormatter(secrets=["s3cr3t-smtp-pass"])
    try:
        raise RuntimeError("login failed with s3cr3t-smtp-pass")
    except RuntimeError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "sending with %s", ("s3cr3t-smtp-pass",),
                                   sys.exc_info())
    line = formatter.format(record)
    assert "s3cr3t-smtp-pass" not in line and json.loads(line)["level"] == "error"


def test_security_headers_on_pages_and_api(client):
    for path in ("/login", "/health", "/api/v1/system/jobs"):
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_cross_origin_form_post_is_refused(client, make_account):
    from tests.conftest import csrf_token_from

    user = make_account(role="admin")
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": user.email, "password": "correct-horse-battery",
                                           "csrf_token": token}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    ok = client.post("/login", data={"email": user.email, "password": "correct-horse-battery",
                                     "csrf_token": token}, headers={"Origin": "http://localhost"})
    assert ok.status_code == 302


def test_trusted_proxy_gives_each_client_its_own_throttle(make_app, make_account):
    """Behind a proxy, X-Forwarded-For (only when trusted) separates clients' failure counts."""
    from tests.web.conftest import login

    app = make_app(TRUSTED_PROXIES="1", LOGIN_MAX_FAILURES="2")
    user = make_account(role="admin")
    client = app.test_client()
    client.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.7"
    assert [login(client, user.email, "wrong-password").status_code for _ in range(3)][-1] == 429
    other = app.test_client()
    other.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.8"
    assert login(other, user.email).status_code == 302
