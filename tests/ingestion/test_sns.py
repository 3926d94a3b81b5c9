"""SNS subscriptions: recorded by the web, confirmed by the worker's chore over real HTTP."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from pagerpal_core.errors import Invalid
from pagerpal_core.models import SnsSubscription
from pagerpal_core.payloads.common import SnsControl
from pagerpal_core.services.alert_sources import create_alert_source
from pagerpal_core.services.sns import (
    MAX_ATTEMPTS,
    confirm_pending_subscriptions,
    list_sns_subscriptions,
    record_sns_control,
    sns_url_region,
)
from tests.ingestion import samples

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


class FakeSns:
    """A local HTTP server standing in for sns.<region>.amazonaws.com; records each GET."""

    def __init__(self, status: int = 200):
        self.status, self.requests = status, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                body = b"<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>" \
                       b"arn:aws:sns:eu-west-1:123456789012:cloudwatch-alarms:1</SubscriptionArn>" \
                       b"</ConfirmSubscriptionResult></ConfirmSubscriptionResponse>"
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def fetch(self, url: str):
        # What the worker's requests-based fetch does, pointed at this server instead of AWS.
        parts = urlsplit(url)
        return requests.get(f"{self.base}{parts.path}?{parts.query}", timeout=5)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def confirmation(url=samples.SUBSCRIBE_URL, topic=samples.TOPIC_ARN, kind="SubscriptionConfirmation"):
    return SnsControl(type=kind, topic_arn=topic, subscribe_url=url, message_id="m-1")


@pytest.mark.parametrize("url, region", [
    (samples.SUBSCRIBE_URL, "eu-west-1"),
    ("https://sns.us-gov-west-1.amazonaws.com/?Action=ConfirmSubscription", "us-gov-west-1"),
    ("https://sns.cn-north-1.amazonaws.com.cn/?Action=ConfirmSubscription", "cn-north-1"),
    ("http://sns.eu-west-1.amazonaws.com/?x", None),
    ("https://sns.eu-west-1.amazonaws.com.evil.test/?x", None),
    ("https://evil.test/sns.eu-west-1.amazonaws.com/", None),
    ("https://user:pw@sns.eu-west-1.amazonaws.com/?x", None),
    ("https://sns.eu-west-1.amazonaws.com:8443/?x", None),
    ("https://sqs.eu-west-1.amazonaws.com/?x", None),
    ("https://127.0.0.1/?x", None),
    (None, None),
])
def test_only_sns_hosts_are_accepted(url, region):
    assert sns_url_region(url) == region


def test_confirmation_recorded_then_confirmed_over_http(session):
    source = create_alert_source(session, name="aws", kind="cloudwatch", now=T0).source
    record_sns_control(session, source, confirmation(), now=T0)
    session.commit()
    with FakeSns() as sns:
        counts = confirm_pending_subscriptions(session, now=T0, fetch=sns.fetch)
        session.commit()
    assert counts == {"confirmed": 1, "retrying": 0, "failed": 0}
    assert len(sns.requests) == 1 and "Action=ConfirmSubscription" in sns.requests[0]
    [row] = list_sns_subscriptions(session, source.id)
    assert (row.status, row.confirmed_at, row.attempts) == ("confirmed", T0, 1)
    with FakeSns() as sns:  # nothing pending any more
        assert confirm_pending_subscriptions(session, now=T0, fetch=sns.fetch)["confirmed"] == 0
        assert sns.requests == []


def test_failed_confirmation_backs_off_then_gives_up(session):
    source = create_alert_source(session, name="aws", kind="cloudwatch", now=T0).source
    record_sns_control(session, source, confirmation(), now=T0)
    session.commit()
    now = T0
    with FakeSns(status=500) as sns:
        assert confirm_pending_subscriptions(session, now=now, fetch=sns.fetch)["retrying"] == 1
        session.commit()
        row = session.scalars(select(SnsSubscription)).one()
        assert row.status == "pending" and row.next_attempt_at > now and "500" in row.last_error
        # Not due yet: not fetched again.
        assert confirm_pending_subscriptions(session, now=now + timedelta(seconds=1), fetch=sns.fetch) == {
            "confirmed": 0, "retrying": 0, "failed": 0}
        for _ in range(MAX_ATTEMPTS - 1):
            now += timedelta(hours=2)
            confirm_pending_subscriptions(session, now=now, fetch=sns.fetch)
            session.commit()
        assert len(sns.requests) == MAX_ATTEMPTS
    session.refresh(row)
    assert row.status == "failed" and row.attempts == MAX_ATTEMPTS


def test_network_errors_are_retried_not_raised(session):
    source = create_alert_source(session, name="aws", kind="cloudwatch", now=T0).source
    record_sns_control(session, source, confirmation(), now=T0)
    session.commit()

    def refused(url):
        return requests.get("http://127.0.0.1:9/", timeout=2)  # nothing listens on the discard port

    assert confirm_pending_subscriptions(session, now=T0, fetch=refused)["retrying"] == 1


def test_a_forged_row_is_never_fetched(session):
    source = create_alert_source(session, name="aws", kind="cloudwatch", now=T0).source
    session.add(SnsSubscription(alert_source_id=source.id, topic_arn=samples.TOPIC_ARN, status="pending",
                                subscribe_url="https://internal.example.test/admin"))
    session.commit()
    fetched = []
    counts = confirm_pending_subscriptions(session, now=T0, fetch=lambda url: fetched.append(url) or 200)
    assert counts["failed"] == 1 and fetched == []


@pytest.mark.parametrize("control, field", [
    (confirmation(url="https://evil.test/"), "SubscribeURL"),
    (confirmation(url="https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"), "SubscribeURL"),
    (confirmation(topic="not-an-arn"), "TopicArn"),
])
def test_record_refuses_bad_confirmations(session, control, field):
    source = create_alert_source(session, name="aws", kind="cloudwatch", now=T0).source
    with pytest.raises(Invalid) as caught:
        record_sns_control(session, source, control, now=T0)
    assert field in caught.value.fields


def test_resubscribe_resets_to_pending_and_unsubscribe_is_recorded(session):
    source = create_alert_source(session, name="aws", kind="cloudwatch", now=T0).source
    record_sns_control(session, source, confirmation(), now=T0)
    session.commit()
    with FakeSns() as sns:
        confirm_pending_subscriptions(session, now=T0, fetch=sns.fetch)
    session.commit()
    record_sns_control(session, source, confirmation(kind="UnsubscribeConfirmation"), now=T0)
    session.commit()
    assert session.scalars(select(SnsSubscription.status)).all() == ["unsubscribed"]
    record_sns_control(session, source, confirmation(), now=T0 + timedelta(minutes=1))
    session.commit()
    row = session.scalars(select(SnsSubscription)).one()
    assert (row.status, row.attempts, row.confirmed_at) == ("pending", 0, None)
