"""Which alert source a key belongs to, remembered per process for at most two seconds.

Ingestion authenticates every request by the SHA-256 of its key. During an alert storm the
same few keys arrive thousands of times a second, so each process keeps what ingestion
needs of a source (id, active, routing, severity map, version) for `CACHE_SECONDS` instead
of asking the database every time.

A cached copy is never trusted to let a revoked key in. Every change to a source that
ingestion caches bumps its `config_version` (services/alert_sources.py), and the statement
that takes the request's rate-limit token only matches the source row while its key hash,
`active` flag and version are still the ones cached (services/ingestion.py). So a
regenerated key or a deactivated source is refused on the very next request by every
process, cache or no cache; the stale entry is dropped and the source read again.

Only a positive answer is ever served from the cache: a key that matches nothing, or a
source cached as inactive, is read again before the request is refused.

The cache also remembers, per key, until when its source's token bucket is known to be
empty (learnt from a refusal), so a flood over the limit is turned away without a query.
Tokens only come back with time, so that bound holds in every process; the database still
decides every accepted request.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from pagerpal_core.models import AlertSource
from pagerpal_core.models.alert_sources import SourceSnapshot
from pagerpal_core.services.alert_sources import KEY_PREFIX, hash_key

# How long a process may answer from its copy of a source (the bound: ≤ 2 s).
CACHE_SECONDS = 2.0
# A bound on memory: past this many keys the cache starts again (sources are few; keys an
# attacker invents are never cached, since only keys that match a source are).
MAX_ENTRIES = 1024


# Named SQL: one source by key hash, only the columns ingestion uses (a unique index lookup).
_LOAD = select(AlertSource.id, AlertSource.name, AlertSource.kind, AlertSource.active, AlertSource.policy_id,
               AlertSource.team_id, AlertSource.severity_map, AlertSource.key_hash,
               AlertSource.config_version)


def load_source_snapshot(session: Session, key_hash: str) -> SourceSnapshot | None:
    """The source whose key hashes to `key_hash`, read from the database now (None when none)."""
    row = session.execute(_LOAD.where(AlertSource.key_hash == key_hash)).one_or_none()
    if row is None:
        return None
    return SourceSnapshot(id=row.id, name=row.name, kind=row.kind, active=bool(row.active),
                          policy_id=row.policy_id, team_id=row.team_id, severity_map=dict(row.severity_map or {}),
                          key_hash=row.key_hash, config_version=row.config_version or 1)


class SourceCache:
    """Key hash → SourceSnapshot for `ttl` seconds, plus "bucket empty until" per key hash."""

    def __init__(self, ttl: float = CACHE_SECONDS, max_entries: int = MAX_ENTRIES, clock=time.monotonic):
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, tuple[SourceSnapshot, float]] = {}
        self._empty_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def lookup(self, session: Session, key_hash: str) -> SourceSnapshot | None:
        """The source for `key_hash`: the cached copy while it is fresh, else read (and kept)."""
        entry = self._entries.get(key_hash)
        now = self.clock()
        if entry is not None and entry[0].active and now - entry[1] < self.ttl:
            return entry[0]
        snapshot = load_source_snapshot(session, key_hash)
        with self._lock:
            if snapshot is None:
                self._entries.pop(key_hash, None)
            else:
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
                self._entries[key_hash] = (snapshot, now)
        return snapshot

    def forget(self, key_hash: str) -> None:
        """Drop the copy for `key_hash` (the database said it is out of date)."""
        with self._lock:
            self._entries.pop(key_hash, None)

    def note_empty(self, key_hash: str, seconds: float) -> None:
        """The bucket of `key_hash`'s source was just found empty; it holds no token for `seconds`."""
        with self._lock:
            if len(self._empty_until) >= self.max_entries:
                self._empty_until.clear()
            self._empty_until[key_hash] = self.clock() + max(0.0, seconds)

    def empty_for(self, key_hash: str) -> float:
        """Seconds the bucket of `key_hash`'s source is still known to be empty (0 when not known)."""
        until = self._empty_until.get(key_hash)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            with self._lock:
                self._empty_until.pop(key_hash, None)
            return 0.0
        return left

    def clear(self) -> None:
        """Forget everything (tests; a process that changed its settings)."""
        with self._lock:
            self._entries.clear()
            self._empty_until.clear()


# The process's cache, shared by every request thread.
SOURCE_CACHE = SourceCache()


def authenticate_key(session: Session, key: str | None) -> SourceSnapshot | None:
    """The source whose key is `key` (active or not; cached while active), or None.

    Same rules as `alert_sources.authenticate_source`: only a well-formed key is looked up,
    by its SHA-256 on a unique index, so response time says nothing about a guess.
    """
    if not isinstance(key, str) or not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    return SOURCE_CACHE.lookup(session, hash_key(key))
