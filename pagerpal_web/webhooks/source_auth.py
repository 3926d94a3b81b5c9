"""Which alert source is calling: the key from a header, Basic auth, the body or the query.

Order of preference: `X-API-Key`, `Authorization: Bearer`, Basic auth with the key as the
password (what SNS can carry, in the subscription URL), a PagerDuty `routing_key`, and
last `?api_key=` — accepted with a warning, because query strings end up in proxy logs.
No key or an unknown key is 401 and an inactive source 403; neither response says
whether any source exists.

The source comes from the process's short-lived cache (pagerpal_core.services.source_cache):
during a storm a key is looked up once every two seconds per process, not once per alert.
The cache never admits a revoked key: ingestion checks the cached version in the same
statement that takes the token and, when it fails, `forget_source` drops the copy and the
request authenticates again from the database.
"""

from __future__ import annotations

import base64
import binascii
import logging

from flask import request

from pagerpal_core.errors import Forbidden, Unauthorized
from pagerpal_core.logs import log_fields
from pagerpal_core.services.source_cache import SOURCE_CACHE, SourceSnapshot, authenticate_key
from pagerpal_web.extensions import db
from pagerpal_web.metrics import remember_alert_source

log = logging.getLogger("pagerpal.webhooks")

NO_KEY = ("an alert source key is required: send it as X-API-Key, Authorization: Bearer, "
          "or Basic auth password")
BAD_KEY = "the alert source key is not valid"


def presented_key(body_key: str | None = None) -> tuple[str | None, str | None]:
    """(key, how) from the request; (None, None) when none was sent."""
    header = request.headers.get("X-API-Key", "").strip()
    if header:
        return header, "header"
    authorization = request.headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), "bearer"
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, _, password = decoded.partition(":")
        # The key belongs in the password; a key given as the user name alone works too.
        key = password or username
        if key:
            return key, "basic"
    if isinstance(body_key, str) and body_key.strip():
        return body_key.strip(), "routing_key"
    query = request.args.get("api_key", "").strip()
    if query:
        return query, "query"
    return None, None


def authenticate_request(body_key: str | None = None) -> SourceSnapshot:
    """The calling, active source; raises Unauthorized (401) or Forbidden (403)."""
    key, how = presented_key(body_key)
    if not key:
        raise Unauthorized(NO_KEY)
    source = authenticate_key(db.session, key)
    if source is None:
        raise Unauthorized(BAD_KEY)
    remember_alert_source(source.name)  # labels a refusal from here on in /metrics
    if not source.active:
        raise Forbidden("this alert source is inactive")
    if how == "query":
        # Never the key itself: only which source should move it into a header.
        log.warning("alert source key sent in the query string; use the X-API-Key header instead",
                    extra=log_fields(source_id=source.id, source=source.name))
    return source


def forget_source(source: SourceSnapshot) -> None:
    """Drop this process's copy of `source` (the database said it changed): the next
    `authenticate_request` reads it again."""
    SOURCE_CACHE.forget(source.key_hash)
