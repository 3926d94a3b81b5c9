"""Chat webhook channel: a policy level's team webhook and a personal webhook receive the incident over a
real local HTTP server; redirects are not followed; bad URLs are 422 naming the field; URLs are masked."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from pagerpal_core.models import Notification
from pagerpal_core.security import mask_destination, redact
from pagerpal_core.services import webhooks
from pagerpal_core.services.escalation import start_escalation
from pagerpal_core.services.escalation_policies import create_policy
from pagerpal_core.services.teams import create_team, update_team
from pagerpal_core.services.webhooks import webhook_url_problem
from pagerpal_core.timeutil import utcnow
from pagerpal_worker.loop import run_cycle
from pagerpal_worker.providers.base import OutboundMessage
from pagerpal_worker.providers.webhook import WebhookSender
from tests.conftest import csrf_token_from
from tests.delivery.conftest import BASE_URL
from tests.factories import make_user
from tests.web.conftest import basic, login
from tests.worker.conftest import make_incident, read

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


class ChatServer:
    """A local HTTP server that records every POST; `/redirect` answers 302 to `/elsewhere`."""

    def __init__(self):
        self.requests: list[tuple[str, dict, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append((self.path, dict(self.headers), json.loads(body or b"{}")))
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{server.port}/elsewhere")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat():
    with ChatServer() as server:
        yield server


@pytest.fixture
def allow_private(monkeypatch):
    """WEBHOOK_ALLOW_PRIVATE=true for this process (the chat server listens on loopback)."""
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")
    webhooks.allow_private_default.cache_clear()
    yield
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE")
    webhooks.allow_private_default.cache_clear()


def test_a_policy_level_team_webhook_receives_the_incident_json(session, make_ctx, chat, allow_private):
    team = create_team(session, name="Databases", now=utcnow())
    update_team(session, team, webhook_url=chat.url("/hooks/T000/B000/secret-part"), webhook_format="json")
    person = make_user(session, contacts=[{"channel": "webhook", "destination": chat.url("/personal/hook")}])
    policy = create_policy(session, name="db", levels=[{"delay_minutes": 5, "targets": [
        {"type": "team_webhook", "id": team.id}, {"type": "user", "id": person.id}]}])
    incident = make_incident(session, title="Replica lag 90s")
    incident.policy_id = policy.id
    now = utcnow()
    start_escalation(session, incident, now=now, base_url=BASE_URL)
    session.commit()
    # A generous timeout: the chat server shares this process (and two busy cores) with the worker.
    run_cycle(make_ctx(NOTIFICATION_SENDING_ENABLED="true", WEBHOOK_ALLOW_PRIVATE="true",
                       PROVIDER_TIMEOUT_SECONDS="5", NOTIFICATION_LEASE_SECONDS="30"), now)

    by_path = {path: (headers, body) for path, headers, body in chat.requests}
    assert set(by_path) == {"/hooks/T000/B000/secret-part", "/personal/hook"}
    headers, body = by_path["/hooks/T000/B000/secret-part"]
    assert headers["Content-Type"] == "application/json"
    assert body["incident_id"] == incident.id and body["title"] == "Replica lag 90s"
    assert (body["severity"], body["status"]) == ("critical", "triggered")
    assert body["links"]["incident"] == f"{BASE_URL}/incidents/{incident.id}"
    # A personal webhook without a format gets the Slack/Mattermost body.
    assert set(by_path["/personal/hook"][1]) == {"text"}
    assert "Replica lag 90s" in by_path["/personal/hook"][1]["text"]
    rows = read(session, lambda: session.scalars(select(Notification).where(
        Notification.incident_id == incident.id).order_by(Notification.id)).all())
    assert sorted((r.channel, r.status, r.user_id is None) for r in rows) == [
        ("webhook", "sent", False), ("webhook", "sent", True)]


def test_redirects_are_not_followed(chat):
    sender = WebhookSender(timeout=2, allow_private=True)
    result = sender.send(OutboundMessage(notification_id=1, channel="webhook", destination=chat.url("/redirect"),
                                         subject="s", body='{"text": "x"}'))
    assert result.outcome == "permanent" and "302" in result.error and "redirect" in result.error
    assert [path for path, _, _ in chat.requests] == ["/redirect"]
    assert "/redirect" not in result.error  # the path is the webhook's secret


def test_the_sender_refuses_private_addresses_unless_allowed(chat):
    message = OutboundMessage(notification_id=1, channel="webhook", destination=chat.url("/hook"),
                              subject="s", body="{}")
    result = WebhookSender(timeout=2, allow_private=False).send(message)
    assert result.outcome == "permanent" and "private" in result.error
    assert chat.requests == []


@pytest.mark.parametrize("url, words", [
    ("ftp://chat.example.com/hook", "http:// or https://"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://127.0.0.1:8080/hook", "private"),
    ("http://10.1.2.3/hook", "private"),
    ("http://[::1]/hook", "private"),
    ("https://" + "a" * 2000 + ".example.com/", "at most 2000"),
    ("https:///nohost", "host"),
])
def test_bad_webhook_urls_are_refused(url, words):
    problem = webhook_url_problem(url, allow_private=False)
    assert problem and words in problem


def test_api_refuses_bad_webhook_urls_naming_the_field(app, client, session):
    admin = make_user(session, role="admin")
    team = create_team(session, name="Web", now=utcnow())
    session.commit()
    headers = basic(admin.email)
    for url in ("javascript:alert(1)", "http://169.254.169.254/latest/meta-data/", "http://localhost/x",
                "https://" + "a" * 2001):
        response = client.post(f"/api/v1/users/{admin.id}/contact-methods", headers=headers,
                               json={"channel": "webhook", "destination": url})
        assert response.status_code == 422, (url, response.get_json())
        assert "destination" in response.get_json()["error"]["fields"]
    response = client.patch(f"/api/v1/teams/{team.id}", headers=headers,
                            json={"webhook_url": "http://169.254.169.254/", "webhook_format": "xml"})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"webhook_url", "webhook_format"}
    assert read(session, lambda: session.get(type(team), team.id).webhook_url) is None  # nothing written


def test_webhook_urls_are_masked():
    url = "https://hooks.slack.com/services/T0001/B0002/abcdefSECRET"
    assert mask_destination(url) == "https://hooks.slack.com/•••"
    assert "abcdefSECRET" not in redact(f"POST {url} failed")
    assert "9f8e7d6c5b4a" not in redact("POST https://chat.example.com/hooks/9f8e7d6c5b4a3f2e1d0c failed")


def test_team_page_sets_the_webhook_and_shows_it_masked(app, session, chat, allow_private):
    admin = make_user(session, role="admin")
    team = create_team(session, name="Payments", now=utcnow())
    session.commit()
    client = app.test_client()
    login(client, admin.email)
    token = csrf_token_from(client.get(f"/teams/{team.id}").get_data(as_text=True))
    refused = client.post(f"/teams/{team.id}/webhook", data={
        "csrf_token": token, "webhook-webhook_url": "gopher://chat.example.com/x", "webhook-webhook_format": "json"})
    assert refused.status_code == 422 and "http:// or https://" in refused.get_data(as_text=True)
    assert read(session, lambda: session.get(type(team), team.id).webhook_url) is None
    saved = client.post(f"/teams/{team.id}/webhook", data={
        "csrf_token": token, "webhook-webhook_url": chat.url("/hooks/payments-secret-path"),
        "webhook-webhook_format": "json"})
    assert saved.status_code == 303
    html = client.get(f"/teams/{team.id}").get_data(as_text=True)
    assert f"http://127.0.0.1:{chat.port}/•••" in html and "payments-secret-path" not in html
    assert read(session, lambda: session.get(type(team), team.id).webhook_format) == "json"


def test_the_audit_log_keeps_webhook_urls_masked(session, allow_private, chat):
    from pagerpal_core.models import AuditEvent
    from pagerpal_core.services.users import add_contact_method

    user = make_user(session)
    add_contact_method(session, user, channel="webhook", destination=chat.url("/hooks/audit-secret-path"),
                       webhook_format="json")
    session.commit()
    rows = session.scalars(select(AuditEvent).where(AuditEvent.action == "contact_method.created")).all()
    assert rows and all("audit-secret-path" not in json.dumps(r.after) for r in rows)
