"""Named advisory-lock ids. Every PostgreSQL advisory lock PagerPal takes is declared here.

`pg_try_advisory_lock(bigint)` ids share one namespace per database with anything else that
uses advisory locks on it, so ours are fixed, spelled-out constants in a range of their own
(0x5050_xxxx: "PP"), never computed from strings at run time.
"""

from __future__ import annotations

from pathlib import Path

# Guards worker leadership: the one pagerpal-worker holding it runs the loop (dispatch,
# escalation, chores, heartbeats); every other instance stands by until it is free. Held as a
# *session* lock on a dedicated connection, so PostgreSQL releases it the moment that
# connection dies (crash, kill -9, network loss) and a standby can take over.
WORKER_LEADER_LOCK_ID = 0x5050_0001

# Guards "at least one admin can still sign in". Every change that can take that away from
# someone (demotion, deactivation, password removal) takes this *transaction* lock before it
# writes and before it counts the remaining admins; it is released at commit or rollback.
# Without it, under READ COMMITTED two admins demoting each other at once would each still
# see the other as admin and both commit, leaving nobody able to administer PagerPal.
ADMIN_GUARD_LOCK_ID = 0x5050_0002

# SQLite has no advisory locks: the leader holds an exclusive flock() on this file beside the
# database file instead. The kernel drops it when the process dies, however it dies.
SQLITE_LEADER_LOCK_SUFFIX = ".worker-leader.lock"


def sqlite_leader_lock_path(database_url: str) -> Path:
    """The leadership lock file for a `sqlite:///path` URL (beside the database file)."""
    path = database_url.split(":///", 1)[1] if ":///" in database_url else ""
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        raise ValueError("the worker needs a file-backed SQLite database, not an in-memory one")
    return Path(path + SQLITE_LEADER_LOCK_SUFFIX)
