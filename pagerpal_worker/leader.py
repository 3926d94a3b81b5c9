"""Leadership: only one pagerpal-worker runs the loop; the others stand by.

PostgreSQL: a session advisory lock (`WORKER_LEADER_LOCK_ID`) taken on a dedicated
connection that does nothing else but LISTEN for wake-ups. The server releases the lock
when that connection dies, so a crashed or killed leader is replaced within a poll interval,
and a leader that loses the connection notices on its next check and stops at once.

SQLite: an exclusive `flock()` on a file beside the database. The kernel releases it when
the holder exits, however it exits.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import select
from typing import Protocol

import psycopg2
import psycopg2.extensions
from sqlalchemy.engine import make_url

from pagerpal_core.locks import WORKER_LEADER_LOCK_ID, sqlite_leader_lock_path
from pagerpal_core.wakeup import WAKEUP_CHANNEL
from pagerpal_worker.signals import StopFlag

log = logging.getLogger("pagerpal.worker")


class LeadershipError(Exception):
    """The lock could not be tried (database unreachable); back off and try again."""


class Leader(Protocol):
    def try_acquire(self) -> bool:
        """Take leadership if free; False when another instance holds it."""

    def still_leader(self) -> bool:
        """Checked every cycle: False means stop working at once."""

    def wait(self, timeout: float, stop: StopFlag) -> bool:
        """Sleep until a wake-up, `timeout`, or stop; True when woken by new work."""

    def release(self) -> None:
        """Give leadership up (and close what holds it)."""


def make_leader(database_url: str) -> Leader:
    """The leadership lock that suits the database behind `database_url`."""
    if database_url.startswith("sqlite"):
        return SqliteLeader(database_url)
    return PostgresLeader(database_url)


def _pg_connect_args(database_url: str) -> dict:
    url = make_url(database_url)
    args = url.translate_connect_args(username="user", database="dbname")
    args.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    return args


class PostgresLeader:
    """The advisory lock on a dedicated autocommit connection that also LISTENs."""

    def __init__(self, database_url: str, *, connect_timeout: int = 5):
        self.connect_args = {
            **_pg_connect_args(database_url),
            "connect_timeout": connect_timeout,
            "application_name": "pagerpal-worker-leader",
            # Notice a silently dead peer (pulled cable, frozen VM) in ~10 s, not hours.
            "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
        }
        self.conn = None
        self.held = False

    def _connect(self):
        if self.conn is not None and not self.conn.closed:
            return self.conn
        try:
            conn = psycopg2.connect(**self.connect_args)
        except psycopg2.Error as exc:
            raise LeadershipError(f"cannot connect for the leadership lock: {type(exc).__name__}") from exc
        conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with conn.cursor() as cur:
            # The check below must never hang the loop on a wedged server.
            cur.execute("SET statement_timeout = 5000")
        self.conn = conn
        return conn

    def try_acquire(self) -> bool:
        """Take the leader advisory lock if free (and LISTEN on the same connection); True when held."""
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (WORKER_LEADER_LOCK_ID,))
                got = bool(cur.fetchone()[0])
                if got:
                    # LISTEN on the same connection: its death ends leadership and wake-ups together.
                    cur.execute(f"LISTEN {WAKEUP_CHANNEL}")
        except psycopg2.Error as exc:
            self._drop()
            raise LeadershipError(f"leadership lock failed: {type(exc).__name__}") from exc
        self.held = got
        return got

    def still_leader(self) -> bool:
        """True when the server still shows this connection holding the leader lock."""
        if not self.held or self.conn is None or self.conn.closed:
            return False
        try:
            with self.conn.cursor() as cur:
                # Ask the server, not our memory: is this backend still holding the lock?
                # A bigint advisory key shows as classid (high 32 bits) / objid (low 32 bits).
                cur.execute(
                    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                    " AND granted AND classid = %s AND objid = %s AND objsubid = 1",
                    (WORKER_LEADER_LOCK_ID >> 32, WORKER_LEADER_LOCK_ID & 0xFFFFFFFF))
                ok = cur.fetchone() is not None
        except psycopg2.Error:
            ok = False
        if not ok:
            self._drop()
        return ok

    def wait(self, timeout: float, stop: StopFlag) -> bool:
        """Sleep up to `timeout` or until a wake-up NOTIFY or stop; True when woken by a notification."""
        if stop.is_set():
            return False
        conn = self.conn
        if conn is None or conn.closed:
            stop.wait(timeout)
            return False
        if self._drain(conn):
            return True
        try:
            readable, _, _ = select.select([conn, stop], [], [], max(timeout, 0))
        except (OSError, ValueError):
            return False
        if conn in readable:
            return self._drain(conn)
        return False

    def _drain(self, conn) -> bool:
        """Read the socket and empty the notification queue; True if any arrived."""
        try:
            conn.poll()
        except psycopg2.Error:
            self._drop()  # the next still_leader() reports the loss
            return False
        woken = bool(conn.notifies)
        conn.notifies.clear()
        return woken

    def release(self) -> None:
        """Give up the leader lock and close its connection."""
        if self.conn is not None and not self.conn.closed and self.held:
            try:
                with self.conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (WORKER_LEADER_LOCK_ID,))
            except psycopg2.Error:
                pass  # closing the connection releases it anyway
        self._drop()

    def _drop(self) -> None:
        self.held = False
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
        self.conn = None


class SqliteLeader:
    """An exclusive flock() on `<database>.worker-leader.lock`."""

    def __init__(self, database_url: str):
        self.path = sqlite_leader_lock_path(database_url)
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock file's exclusive flock if free; True when held."""
        if self.fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LeadershipError(f"cannot open the leadership lock file: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise LeadershipError(f"cannot lock {self.path}: {exc.strerror}") from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def still_leader(self) -> bool:
        """True while we hold the lock on the file that is still at the lock path."""
        if self.fd is None:
            return False
        # If the file was deleted or replaced, another process could lock the new one: treat
        # that as lost leadership rather than run two leaders.
        try:
            same = os.fstat(self.fd).st_ino == os.stat(self.path).st_ino
        except OSError:
            same = False
        if not same:
            self.release()
        return same

    def wait(self, timeout: float, stop: StopFlag) -> bool:
        """Sleep up to `timeout` or until stop; always False (SQLite has no NOTIFY)."""
        # SQLite has no NOTIFY: the poll interval drives everything.
        stop.wait(max(timeout, 0))
        return False

    def release(self) -> None:
        """Unlock and close the lock file."""
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None
