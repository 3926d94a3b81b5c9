"""Amazon SNS message signatures (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA).

SNS signs every message it posts with the key of an X.509 certificate it publishes at
`SigningCertURL`. A source whose `sns_verification` is "verify" has each CloudWatch/SNS
body checked here before anything is parsed or written: the canonical string to sign
(AWS's documented field list for the message's Type, each field as "name\\nvalue\\n"),
the signature against the certificate's RSA key, and the certificate URL against the one
allow-list of SNS hosts in services/sns.py (`https://sns.<region>.amazonaws.com/…​.pem`,
the topic's own region).

Where the certificate comes from: the web never calls out (DESIGN: a request never waits
on outside I/O). A certificate is read from this process's memory, else from the
`sns_signing_certs` table; when neither has it the request records the URL as "wanted"
and is refused with 503 + Retry-After. The worker's chores step fetches wanted URLs (over
HTTPS from the pinned host, no redirects, short timeout) within seconds, and SNS's own
delivery retries bring the message back. SNS uses one certificate per region for months,
so this happens about once per region per rotation.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pagerpal_core.db import is_postgres
from pagerpal_core.errors import DomainError, Forbidden
from pagerpal_core.logs import log_fields
from pagerpal_core.models import AlertSource, SnsSigningCert
from pagerpal_core.security import clip, redact
from pagerpal_core.services.sns import TOPIC_ARN_RE, sns_url_region
from pagerpal_core.timeutil import as_utc

log = logging.getLogger("pagerpal.sns")

VERIFY, KEY_ONLY = "verify", "key-only"

# AWS's string-to-sign fields per message type, in the documented (byte) order. Subject is
# signed only when the message has one.
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
OPTIONAL_FIELDS = {"Subject"}
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}

MAX_PEM_BYTES = 16_384
# Bounds on what an authenticated but hostile sender can make PagerPal remember.
MAX_WANTED = 20
MAX_CACHED_KEYS = 64
# The worker retries a failed fetch quickly at first (SNS retries a refused message about
# 20 s later), then at most hourly; a URL is never given up for good.
FETCH_RETRY_BASE = timedelta(seconds=5)
FETCH_RETRY_MAX = timedelta(hours=1)
FAILED_AFTER = 6
PENDING_RETRY_AFTER = 20


class SignatureRefused(Forbidden):
    """The message is not proven to come from SNS (403); nothing is written."""

    code = "sns_signature_invalid"


class SigningCertPending(DomainError):
    """The signing certificate is not known yet; the worker fetches it (503, retry)."""

    code, status = "sns_certificate_pending", 503

    def __init__(self, message: str, *, retry_after: int = PENDING_RETRY_AFTER, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


def signing_cert_url_region(url) -> str | None:
    """The region of a SigningCertURL on SNS's own host (the allow-list of services/sns.py),
    ending in `.pem`, with no query or fragment; None for anything else."""
    region = sns_url_region(url)
    if region is None:
        return None
    parts = urlsplit(url)
    if parts.query or parts.fragment or not parts.path.endswith(".pem") or "/../" in parts.path + "/":
        return None
    return region


def string_to_sign(body: dict) -> bytes:
    """The canonical bytes SNS signed for `body`; SignatureRefused when a signed field is
    missing or not a string."""
    fields = SIGNED_FIELDS.get(body.get("Type"))
    if fields is None:
        raise SignatureRefused("the SNS message Type cannot be verified",
                               fields={"Type": "must be Notification, SubscriptionConfirmation or "
                                               "UnsubscribeConfirmation"})
    parts = []
    for name in fields:
        value = body.get(name)
        if value is None and name in OPTIONAL_FIELDS:
            continue
        if not isinstance(value, str):
            raise SignatureRefused("the SNS message lacks a signed field", fields={name: "is required"})
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8")


@dataclass(frozen=True)
class _Key:
    public_key: rsa.RSAPublicKey
    not_after: datetime


class _KeyCache:
    """SigningCertURL → parsed public key, per process (certificates never change under one URL)."""

    def __init__(self, max_entries: int = MAX_CACHED_KEYS):
        self.max_entries = max_entries
        self._keys: dict[str, _Key] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> _Key | None:
        return self._keys.get(url)

    def put(self, url: str, key: _Key) -> None:
        with self._lock:
            if len(self._keys) >= self.max_entries:
                self._keys.clear()
            self._keys[url] = key

    def clear(self) -> None:
        """Forget every key (tests)."""
        with self._lock:
            self._keys.clear()


KEY_CACHE = _KeyCache()


def parse_certificate(pem: bytes | str) -> _Key:
    """The RSA public key and expiry of a PEM certificate; ValueError when it is not one."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    if len(data) > MAX_PEM_BYTES:
        raise ValueError("certificate is too large")
    cert = x509.load_pem_x509_certificate(data)
    public_key = cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("certificate does not hold an RSA key")
    return _Key(public_key=public_key, not_after=as_utc(cert.not_valid_after_utc))


def source_verification(session: Session, source_id: int) -> str:
    """The source's `sns_verification` setting ("verify" or "key-only")."""
    return session.scalar(select(AlertSource.sns_verification).where(AlertSource.id == source_id)) or VERIFY


def _want(session: Session, url: str, now: datetime) -> None:
    """Record `url` for the worker to fetch (once; bounded so a sender cannot fill the table)."""
    wanted = session.scalar(select(func.count()).select_from(SnsSigningCert)
                            .where(SnsSigningCert.status != "ready")) or 0
    if wanted >= MAX_WANTED:
        return
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    session.execute(insert(SnsSigningCert).values(url=url, status="wanted", attempts=0, requested_at=now,
                                                  next_attempt_at=now).on_conflict_do_nothing())
    session.flush()


def _signing_key(session: Session, url: str, now: datetime) -> _Key:
    key = KEY_CACHE.get(url)
    if key is None:
        row = session.scalar(select(SnsSigningCert).where(SnsSigningCert.url == url))
        if row is None:
            _want(session, url, now)
            raise SigningCertPending("the SNS signing certificate is being fetched; retry shortly")
        if row.status != "ready" or not row.pem:
            raise SigningCertPending("the SNS signing certificate could not be fetched yet; retry later")
        try:
            key = parse_certificate(row.pem)
        except ValueError:
            raise SignatureRefused("the SNS signing certificate is not usable") from None
        KEY_CACHE.put(url, key)
    if key.not_after < now:
        raise SignatureRefused("the SNS signing certificate has expired")
    return key


def verify_sns_message(session: Session, body, *, now: datetime) -> None:
    """Check an SNS envelope's signature; returns quietly when it is SNS's own.

    Raises SignatureRefused (403: unsigned, unknown SignatureVersion, certificate URL off
    SNS's hosts or in another region than the topic, bad signature) or SigningCertPending
    (503: the certificate is not fetched yet; the URL is recorded for the worker, and the
    caller commits that row). Reads only otherwise.
    """
    if not isinstance(body, dict):
        raise SignatureRefused("an SNS message must be a JSON object carrying its signature")
    signature = body.get("Signature")
    version = body.get("SignatureVersion")
    if not isinstance(signature, str) or not signature:
        raise SignatureRefused("the SNS message is not signed (raw message delivery cannot be verified)",
                               fields={"Signature": "is required"})
    algorithm = HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        raise SignatureRefused("unsupported SNS SignatureVersion", fields={"SignatureVersion": "must be 1 or 2"})
    message = string_to_sign(body)
    arn = TOPIC_ARN_RE.match(body.get("TopicArn") or "")
    url = body.get("SigningCertURL")
    region = signing_cert_url_region(url)
    if region is None or arn is None or region != arn.group(1):
        raise SignatureRefused("the SNS signing certificate URL is not an https://sns.<region>.amazonaws.com/"
                               " .pem of the topic's region", fields={"SigningCertURL": "not an SNS certificate"})
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused("the SNS signature is not base64", fields={"Signature": "not base64"}) from None
    key = _signing_key(session, url, now)
    try:
        key.public_key.verify(raw_signature, message, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        log.warning("sns signature refused", extra=log_fields(topic_arn=body.get("TopicArn"),
                                                             signing_cert_url=url))
        raise SignatureRefused("the SNS signature does not match the message") from None


def fetch_wanted_signing_certs(session: Session, *, now: datetime, fetch, limit: int = 5) -> dict:
    """Fetch the certificates the web asked for (the worker's chore); returns counts.

    `fetch(url)` returns the PEM bytes or raises; the URL is checked against the SNS host
    allow-list first (a row that did not come through the web's check is never fetched).
    A row stays wanted with backoff while fetching fails, and is marked failed (still
    retried hourly) after FAILED_AFTER attempts. The caller commits.
    """
    query = (select(SnsSigningCert)
             .where(SnsSigningCert.status != "ready",
                    or_(SnsSigningCert.next_attempt_at.is_(None), SnsSigningCert.next_attempt_at <= now))
             .order_by(SnsSigningCert.id).limit(limit))
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    counts = {"fetched": 0, "retrying": 0}
    for row in session.scalars(query).all():
        row.attempts += 1
        try:
            if signing_cert_url_region(row.url) is None:
                raise ValueError("not an https://sns.<region>.amazonaws.com/….pem URL")
            pem = fetch(row.url)
            parse_certificate(pem)
            row.pem = pem.decode("ascii") if isinstance(pem, bytes) else pem
            row.status, row.fetched_at, row.last_error, row.next_attempt_at = "ready", now, None, None
            counts["fetched"] += 1
        except Exception as exc:  # any failure is a retry, never a crash of the chore
            delay = min(FETCH_RETRY_MAX, FETCH_RETRY_BASE * (2 ** min(row.attempts - 1, 20)))
            row.last_error = clip(redact(f"{type(exc).__name__}: {exc}"), 1000)
            row.next_attempt_at = now + delay
            row.status = "failed" if row.attempts >= FAILED_AFTER else "wanted"
            counts["retrying"] += 1
        log.info("sns signing certificate fetch", extra=log_fields(url=row.url, status=row.status,
                                                                   attempts=row.attempts))
    session.flush()
    return counts
