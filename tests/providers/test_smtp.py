"""The SMTP sender against a real local SMTP server (aiosmtpd), over real sockets."""

from __future__ import annotations

import pytest

from pagerpal_core.messages import render_page
from pagerpal_core.models import Incident
from pagerpal_worker.providers.base import OutboundMessage
from pagerpal_worker.providers.smtp import SmtpSender, html_from_text, message_id_for
from tests.fakes.smtp import FakeSMTP
from tests.providers.conftest import SMTP_PASSWORD, closed_port

BODY = "[CRITICAL] DB down\n\nSeverity: critical\nSource: grafana\n\nOpen the incident: http://pp.test/incidents/9\n"


def email_page(n=1, to="oncall@example.test", body=BODY):
    return OutboundMessage(notification_id=n, channel="email", destination=to, subject="[CRITICAL] DB down",
                           body=body, incident_id=9)


def sender_for(server: FakeSMTP, **kw) -> SmtpSender:
    defaults = dict(host=server.host, port=server.port, from_address="PagerPal <pagerpal@example.test>",
                    security=server.security, timeout=5.0, instance="http://pp.test")
    if server.security != "none":
        defaults["ssl_context"] = server.client_ssl_context()
    if server.users:
        defaults.update(user="pager", password=SMTP_PASSWORD)
    defaults.update(kw)
    return SmtpSender(**defaults)


@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
def test_email_is_delivered_with_text_and_html_parts(security):
    users = {"pager": SMTP_PASSWORD} if security != "none" else None
    with FakeSMTP(security=security, users=users) as server:
        result = sender_for(server).send(email_page())
        assert result.outcome == "accepted"
        [got] = server.wait_for_messages(1)
    assert got.tls == (security != "none")
    assert got.login == ("pager" if users else None)
    assert got.rcpt_tos == ["oncall@example.test"] and got.mail_from == "pagerpal@example.test"
    assert got.message["Subject"] == "[CRITICAL] DB down"
    assert got.message["Auto-Submitted"] == "auto-generated"
    assert result.provider_message_id == got.message["Message-ID"]
    assert "http://pp.test/incidents/9" in got.text_part()
    assert '<a href="http://pp.test/incidents/9">' in got.html_part()


def test_message_id_is_stable_per_notification(smtp_server):
    sender = sender_for(smtp_server)
    sender.send(email_page(n=5))
    sender.send(email_page(n=5))
    sender.send(email_page(n=6))
    ids = [m.message["Message-ID"] for m in smtp_server.wait_for_messages(3)]
    assert ids[0] == ids[1] != ids[2]
    assert ids[0] == message_id_for(5, from_address="pagerpal@example.test", instance="http://pp.test")
    assert ids[0].endswith("@example.test>")
    # One incident's pages thread together.
    assert len({m.message["References"] for m in smtp_server.messages}) == 1


def test_rendered_page_is_sent_as_text_and_html_alternatives_with_the_same_links(smtp_server):
    incident = Incident(id=9, title="DB <down>", description="<script>alert(1)</script> & more",
                        severity="critical", status="triggered")
    page = render_page(incident, "email", base_url="http://pp.test", source_name="grafana", action_token="tok123")
    assert sender_for(smtp_server).send(email_page(body=page.body)).outcome == "accepted"
    [got] = smtp_server.wait_for_messages(1)
    assert got.message.get_content_type() == "multipart/alternative"
    text, html_part = got.text_part(), got.html_part()
    links = ["http://pp.test/a/tok123?do=ack", "http://pp.test/a/tok123?do=resolve",
             "http://pp.test/a/tok123?do=escalate", "http://pp.test/incidents/9"]
    for link in links:
        assert link in text and f'<a href="{link}">' in html_part
    # The HTML part is the same words, escaped: markup in an alert never reaches the reader's mail client.
    assert "<script>" not in html_part and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html_part
    assert "DB &lt;down&gt;" in html_part


def test_wrong_password_is_permanent_and_does_not_leak_it():
    with FakeSMTP(security="starttls", users={"pager": SMTP_PASSWORD}) as server:
        result = sender_for(server, password="wrong-password-123").send(email_page())
    assert result.outcome == "permanent" and "refused the login" in result.error
    assert "wrong-password-123" not in result.error and SMTP_PASSWORD not in result.error


def test_refused_recipient_is_permanent(smtp_server):
    smtp_server.reject_rcpt("550 5.1.1 No such user")
    result = sender_for(smtp_server).send(email_page())
    assert result.outcome == "permanent" and "550" in result.error and "No such user" in result.error


def test_temporary_failure_is_retryable(smtp_server):
    smtp_server.reject_data("451 4.3.0 Try again later")
    result = sender_for(smtp_server).send(email_page())
    assert result.outcome == "retryable" and "451" in result.error
    assert sender_for(smtp_server).send(email_page()).outcome == "accepted"


def test_greylisted_recipient_is_retryable(smtp_server):
    smtp_server.reject_rcpt("450 4.2.0 Greylisted")
    assert sender_for(smtp_server).send(email_page()).outcome == "retryable"


def test_a_hanging_server_times_out_as_retryable(smtp_server):
    smtp_server.hang_next(5.0)
    result = sender_for(smtp_server, timeout=0.5).send(email_page())
    assert result.outcome == "retryable" and "timed out" in result.error


def test_nothing_listening_is_retryable():
    sender = SmtpSender(host="127.0.0.1", port=closed_port(), from_address="p@example.test", security="none",
                        timeout=2.0)
    result = sender.send(email_page())
    assert result.outcome == "retryable" and "refused the connection" in result.error


def test_starttls_required_but_not_offered_is_permanent(smtp_server):
    result = sender_for(smtp_server, security="starttls").send(email_page())
    assert result.outcome == "permanent" and "STARTTLS" in result.error
    assert smtp_server.messages == []


def test_implicit_tls_against_a_plain_server_is_permanent(smtp_server):
    result = sender_for(smtp_server, security="tls").send(email_page())
    assert result.outcome == "permanent" and "SMTP_SECURITY" in result.error


def test_untrusted_certificate_is_permanent():
    with FakeSMTP(security="tls") as server:
        result = sender_for(server, ssl_context=None).send(email_page())   # system trust store only
    assert result.outcome == "permanent" and "certificate" in result.error


def test_invalid_address_is_permanent_without_connecting(smtp_server):
    result = sender_for(smtp_server).send(email_page(to="not-an-address"))
    assert result.outcome == "permanent" and "email address" in result.error


def test_html_from_text_escapes_and_links():
    out = html_from_text("<b>x</b> & y\n\nsee https://pp.test/incidents/1")
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in out
    assert '<a href="https://pp.test/incidents/1">https://pp.test/incidents/1</a>' in out
