"""Per-address request limits kept in each process's memory, bounded in size.

For requests that carry no account or source to charge — a calendar feed fetched by its
secret URL, a webhook call with no valid key — the only thing to count is the client
address. Counting in the database would let anyone make PagerPal write on every refused
request, so these counts stay in memory: a token bucket per (scope, address), at most
`max_entries` addresses per limiter (the least recently seen are forgotten first, so a
flood of invented addresses costs memory it cannot grow). Each web process counts on its
own, so the effective limit is per process; that bounds abuse without a shared store.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from pagerpal_core.errors import RateLimited


class AddressLimiter:
    """A token bucket per address: `capacity` requests at once, `refill_per_second` after."""

    def __init__(self, capacity: float, refill_per_second: float, *, max_entries: int = 10_000,
                 clock=time.monotonic):
        self.capacity = float(capacity)
        self.refill_per_second = float(refill_per_second)
        self.max_entries = max_entries
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, address: str) -> float:
        """Spend one token for `address`; returns 0 when allowed, else the seconds until one is back."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(address, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill_per_second)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[address] = (tokens, now)
            while len(self._buckets) > self.max_entries:
                self._buckets.popitem(last=False)
        if allowed:
            return 0.0
        return (1.0 - tokens) / self.refill_per_second if self.refill_per_second > 0 else 3600.0

    def check(self, address: str, message: str) -> None:
        """Spend one token for `address` or raise RateLimited(message) with the wait."""
        wait = self.take(address)
        if wait > 0:
            raise RateLimited(message, retry_after=math.ceil(wait))

    def clear(self) -> None:
        """Forget every address (tests)."""
        with self._lock:
            self._buckets.clear()
