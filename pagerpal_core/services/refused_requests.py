"""Refused webhook requests count against the rate limit too.

A request that is refused costs the server work just like an accepted one, so refusals
must not be a way around the limit:

- a request from a known source that is refused after authentication (a body that does
  not decode or parse, an SNS signature that does not verify) spends one of the source's
  tokens, exactly as an accepted alert does; with none left it is answered 429;
- a request with no key or an unknown key has no source to charge, so it is counted per
  client address in memory (an `AddressLimiter` per app, bounded; counting it in the
  database would let anyone make PagerPal write on every guess); past the limit it is
  answered 429 instead of 401.

An address is never refused for requests that do carry a valid key: only refusals are
counted per address, so one bad sender behind a shared address does not stop the others.
"""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy.orm import Session

from pagerpal_core.errors import RateLimited
from pagerpal_core.services.address_limits import AddressLimiter
from pagerpal_core.services.ingestion import rate_limited_error
from pagerpal_core.services.rate_limit import SourceChanged, TokenBucket, take_token

# Refused unauthenticated webhook calls per client address and web process: a burst of 30,
# then one every 2 s. A sender with a mistyped key sees 401s at its own pace; a
# key-guessing flood gets 429s.
UNAUTHENTICATED_BURST = 30
UNAUTHENTICATED_PER_SECOND = 0.5


def new_unauthenticated_limiter() -> AddressLimiter:
    """The per-address limiter for refused unauthenticated calls (one per app)."""
    return AddressLimiter(capacity=UNAUTHENTICATED_BURST, refill_per_second=UNAUTHENTICATED_PER_SECOND)


def count_unauthenticated(limiter: AddressLimiter, address: str) -> None:
    """Count one refused unauthenticated call from `address`; RateLimited once over the limit."""
    wait = limiter.take(address)
    if wait > 0:
        raise RateLimited("too many unauthenticated requests from this address; retry later",
                          retry_after=math.ceil(wait))


def charge_refused_request(session: Session, source, *, now: datetime, bucket: TokenBucket) -> RateLimited | None:
    """Spend one token of `source`'s bucket for a request refused after authentication.

    `source` is the SourceSnapshot the request authenticated as. Returns the RateLimited
    to answer instead of the refusal when the bucket is empty, else None. Runs in the
    caller's (otherwise empty) transaction; the caller commits. A source changed since it
    was read is not charged (the next request authenticates again anyway).
    """
    try:
        result = take_token(session, source.id, now=now, capacity=bucket.capacity,
                            refill_per_second=bucket.refill_per_second, expect=source)
    except SourceChanged:
        return None
    if result.allowed:
        return None
    error = rate_limited_error(source.name, result.retry_after)
    error.wait = result.wait
    return error
