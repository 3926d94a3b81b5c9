"""The CloudWatch/SNS endpoint's signature check, between authentication and parsing."""

from __future__ import annotations

from pagerpal_core.services.sns_signatures import (
    KEY_ONLY,
    SigningCertPending,
    source_verification,
    verify_sns_message,
)
from pagerpal_core.services.source_cache import SourceSnapshot
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db


def check_sns_signature(source: SourceSnapshot, body) -> None:
    """Refuse (403) an SNS body a "verify" source did not get from SNS; 503 while its
    certificate is being fetched. A "key-only" source is trusted on its key alone."""
    if source_verification(db.session, source.id) == KEY_ONLY:
        return
    try:
        verify_sns_message(db.session, body, now=utcnow())
    except SigningCertPending:
        db.session.commit()  # only the certificate URL the worker is to fetch
        raise
    # The check only read: end its transaction so ingestion starts on a fresh one.
    db.session.rollback()
