"""SNS message signatures on the CloudWatch endpoint (finding 13).

A throwaway RSA key and self-signed certificate stand in for SNS's; the worker's fetch is
injected, so the certificate is "served" without a network (the host pinning of the real
fetch is tested with URL cases below).
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from pagerpal_core.models import AlertSource, Incident, IncidentEvent, SnsSigningCert, SnsSubscription
from pagerpal_core.services.alert_sources import create_alert_source
from pagerpal_core.services.sns_signatures import (
    KEY_CACHE,
    fetch_wanted_signing_certs,
    signing_cert_url_region,
    string_to_sign,
)
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from pagerpal_worker.steps.chores import FetchRefused, make_cert_fetch
from tests.ingestion import samples
from tests.web.conftest import basic

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")

CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000.pem"
PATH = "/api/v1/webhooks/cloudwatch"


def make_cert():
    """(private key, PEM bytes) of a fresh self-signed RSA certificate valid for a day."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def signer():
    return make_cert()


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    KEY_CACHE.clear()
    yield
    KEY_CACHE.clear()


def sign(body: dict, key, version: str = "2") -> dict:
    """`body` signed the way SNS signs it."""
    body = dict(body, SignatureVersion=version, SigningCertURL=CERT_URL)
    body.pop("Signature", None)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(string_to_sign(body), padding.PKCS1v15(), algorithm)
    body["Signature"] = base64.b64encode(signature).decode()
    return body


def add_source(app, **kwargs):
    with app.app_context():
        issued = create_alert_source(db.session, name=f"aws-{utcnow().timestamp()}", kind="cloudwatch",
                                     now=utcnow(), **kwargs)
        db.session.commit()
        return issued.source.id, issued.key


def serve_cert(app, pem: bytes) -> dict:
    """Run the worker's certificate chore with `pem` as what SNS serves."""
    with app.app_context():
        counts = fetch_wanted_signing_certs(db.session, now=utcnow(), fetch=lambda url: pem)
        db.session.commit()
        return counts


def counts(app) -> dict:
    with app.app_context():
        out = {m.__tablename__: db.session.scalar(select(func.count()).select_from(m))
               for m in (Incident, IncidentEvent, SnsSubscription)}
        db.session.remove()
        return out


def post(client, body, key):
    return client.post(PATH, data=json.dumps(body), headers={"X-API-Key": key}, content_type="text/plain")


@pytest.fixture
def verified(app, client, signer):
    """A verify-mode source whose certificate the worker has already fetched."""
    key, pem = signer
    source_id, source_key = add_source(app)
    first = post(client, sign(samples.sns_notification(), key), source_key)
    assert first.status_code == 503 and first.headers["Retry-After"]
    assert first.get_json()["error"]["code"] == "sns_certificate_pending"
    assert serve_cert(app, pem) == {"fetched": 1, "retrying": 0}
    KEY_CACHE.clear()
    return source_key


def test_new_sources_verify_and_signed_notifications_of_both_versions_are_accepted(app, client, signer,
                                                                                     verified):
    key, _pem = signer
    with app.app_context():
        assert db.session.scalars(select(AlertSource.sns_verification)).all() == ["verify"]
    assert counts(app)["incidents"] == 0  # the 503 wrote nothing but the certificate URL
    v1 = post(client, sign(samples.sns_notification(), key, "1"), verified)
    assert v1.status_code == 200, v1.get_json()
    assert v1.get_json()["counts"] == {"created": 1}
    v2 = post(client, sign(samples.sns_notification(samples.cloudwatch_alarm("OK")), key, "2"), verified)
    assert v2.status_code == 200, v2.get_json()
    assert v2.get_json()["counts"] == {"resolved": 1}


def test_signed_subscription_and_unsubscription_are_accepted(app, client, signer, verified):
    key, _pem = signer
    sub = post(client, sign(samples.sns_subscription_confirmation(), key, "1"), verified)
    assert sub.status_code == 200, sub.get_json()
    assert sub.get_json()["sns"]["status"] == "pending"
    unsub = post(client, sign(samples.sns_unsubscribe_confirmation(), key, "2"), verified)
    assert unsub.status_code == 200, unsub.get_json()
    assert unsub.get_json()["sns"]["status"] == "unsubscribed"


def test_notification_without_subject_is_signed_without_it(app, client, signer, verified):
    key, _pem = signer
    body = samples.sns_notification()
    del body["Subject"]
    assert post(client, sign(body, key), verified).status_code == 200


def tampered_message(body):
    body["Message"] = json.dumps(samples.cloudwatch_alarm("ALARM") | {"AlarmName": "forged"})


def tampered_token(body):
    body["Token"] = "0" * 40


def tampered_subscribe_url(body):
    body["SubscribeURL"] = body["SubscribeURL"].replace("Token=", "Token=1")


@pytest.mark.parametrize("make, tamper", [
    (samples.sns_notification, tampered_message),
    (samples.sns_notification, lambda b: b.update(Subject="forged subject")),
    (samples.sns_notification, lambda b: b.update(Timestamp="2030-01-01T00:00:00.000Z")),
    (samples.sns_subscription_confirmation, tampered_token),
    (samples.sns_subscription_confirmation, tampered_subscribe_url),
    (samples.sns_notification, lambda b: b.update(SignatureVersion="3")),
    (samples.sns_notification, lambda b: b.update(SignatureVersion=2)),
    (samples.sns_notification, lambda b: b.pop("Signature")),
    (samples.sns_notification, lambda b: b.update(Signature="")),
    (samples.sns_notification, lambda b: b.update(Signature="not base64!")),
    (samples.sns_notification, lambda b: b.pop("SignatureVersion")),
    (samples.sns_notification, lambda b: b.update(SigningCertURL="https://sns.eu-west-1.amazonaws.com.evil.test/x.pem")),
    (samples.sns_notification, lambda b: b.update(SigningCertURL=CERT_URL.replace("eu-west-1", "us-east-1"))),
    (samples.sns_notification, lambda b: b.update(TopicArn=b["TopicArn"].replace("eu-west-1", "us-east-1"))),
], ids=["message", "subject", "timestamp", "token", "subscribe-url", "version-3", "version-int", "no-signature",
        "empty-signature", "not-base64", "no-version", "cert-host", "cert-region", "topic-region"])
def test_tampered_or_unsigned_messages_are_refused_and_write_nothing(app, client, signer, verified, make, tamper):
    key, _pem = signer
    body = sign(make(), key)
    tamper(body)
    before = counts(app)
    response = post(client, body, verified)
    assert response.status_code == 403, response.get_json()
    assert response.get_json()["error"]["code"] == "sns_signature_invalid"
    assert counts(app) == before
    with app.app_context():  # no new certificate URL either
        assert db.session.scalar(select(func.count()).select_from(SnsSigningCert)) == 1


def test_raw_message_delivery_is_refused_when_verifying(app, client, verified):
    response = post(client, samples.cloudwatch_alarm(), verified)
    assert response.status_code == 403
    assert counts(app)["incidents"] == 0


def test_message_signed_by_another_key_is_refused(app, client, verified):
    other_key, _other_pem = make_cert()
    before = counts(app)
    response = post(client, sign(samples.sns_notification(), other_key), verified)
    assert response.status_code == 403
    assert counts(app) == before


def test_wrong_certificate_served_for_the_url_is_refused(app, client, signer):
    key, _pem = signer
    _other_key, other_pem = make_cert()
    _source_id, source_key = add_source(app)
    body = sign(samples.sns_notification(), key)
    assert post(client, body, source_key).status_code == 503
    serve_cert(app, other_pem)
    before = counts(app)
    assert post(client, body, source_key).status_code == 403
    assert counts(app) == before


def test_key_only_source_still_accepts_unsigned_messages(app, client):
    _source_id, source_key = add_source(app, sns_verification="key-only")
    response = post(client, samples.sns_notification(), source_key)
    assert response.status_code == 200
    assert response.get_json()["counts"] == {"created": 1}


def test_setting_is_changed_through_the_api_and_validated(app, client, verified, make_account):
    admin = make_account(role="admin")
    headers = {**basic(admin.email), "Content-Type": "application/json"}
    with app.app_context():
        source_id = db.session.scalar(select(AlertSource.id))
    bad = client.patch(f"/api/v1/alert-sources/{source_id}", data=json.dumps({"sns_verification": "maybe"}),
                       headers=headers)
    assert bad.status_code == 422 and "sns_verification" in bad.get_json()["error"]["fields"]
    ok = client.patch(f"/api/v1/alert-sources/{source_id}", data=json.dumps({"sns_verification": "key-only"}),
                      headers=headers)
    assert ok.status_code == 200 and ok.get_json()["sns_verification"] == "key-only"
    assert post(client, samples.sns_notification(), verified).status_code == 200


def test_unknown_certificate_is_wanted_once_and_bounded(app, client, signer):
    key, _pem = signer
    _source_id, source_key = add_source(app)
    for _ in range(3):
        assert post(client, sign(samples.sns_notification(), key), source_key).status_code == 503
    with app.app_context():
        rows = db.session.scalars(select(SnsSigningCert)).all()
        assert [(r.url, r.status) for r in rows] == [(CERT_URL, "wanted")]
    assert counts(app)["incidents"] == 0


def test_failed_fetch_is_retried_with_backoff_and_marked_failed(app):
    with app.app_context():
        db.session.add(SnsSigningCert(url=CERT_URL, status="wanted", attempts=0, requested_at=utcnow()))
        db.session.commit()

        def broken(url):
            raise OSError("connection refused")
        now = utcnow()
        for i in range(6):
            fetch_wanted_signing_certs(db.session, now=now + timedelta(days=i), fetch=broken)
        db.session.commit()
        row = db.session.scalar(select(SnsSigningCert))
        assert row.status == "failed" and row.attempts == 6 and row.next_attempt_at is not None
        assert "connection refused" in row.last_error


@pytest.mark.parametrize("url, region", [
    (CERT_URL, "eu-west-1"),
    ("https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem", "us-gov-west-1"),
    ("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem", "cn-north-1"),
    ("http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem", None),
    ("https://sns.eu-west-1.amazonaws.com.evil.test/SimpleNotificationService-abc.pem", None),
    ("https://evil.test/sns.eu-west-1.amazonaws.com/x.pem", None),
    ("https://sns.eu-west-1.amazonaws.com@evil.test/x.pem", None),
    ("https://user:pw@sns.eu-west-1.amazonaws.com/x.pem", None),
    ("https://sns.eu-west-1.amazonaws.com:8443/x.pem", None),
    ("https://sns.eu-west-1.amazonaws.com/x.pem?redirect=https://evil.test", None),
    ("https://sns.eu-west-1.amazonaws.com/x.pem#frag", None),
    ("https://sns.eu-west-1.amazonaws.com/x.txt", None),
    ("https://s3.eu-west-1.amazonaws.com/x.pem", None),
    ("https://sns.amazonaws.com/x.pem", None),
    ("https://127.0.0.1/x.pem", None),
    ("", None), (None, None), (42, None),
])
def test_signing_cert_url_is_pinned_to_sns_hosts(url, region):
    assert signing_cert_url_region(url) == region


def test_worker_fetch_refuses_unpinned_urls_without_connecting():
    fetch = make_cert_fetch(timeout=0.5)
    for url in ("http://127.0.0.1:1/x.pem", "https://sns.eu-west-1.amazonaws.com.evil.test/x.pem",
                "https://sns.eu-west-1.amazonaws.com/x.pem?a=b"):
        with pytest.raises(FetchRefused):
            fetch(url)


def test_chore_never_fetches_a_row_that_is_not_an_sns_certificate_url(app):
    seen = []
    with app.app_context():
        db.session.add(SnsSigningCert(url="https://evil.test/x.pem", status="wanted", attempts=0,
                                      requested_at=utcnow()))
        db.session.commit()
        fetch_wanted_signing_certs(db.session, now=utcnow(), fetch=seen.append)
        db.session.commit()
        assert seen == [] and db.session.scalar(select(SnsSigningCert.status)) == "wanted"
