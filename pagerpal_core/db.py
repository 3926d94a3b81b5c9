"""The declarative base, column types, and engine/session helpers shared by web and worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, DateTime, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from sqlalchemy.types import TypeDecorator

from pagerpal_core.errors import Conflict, NotFound
from pagerpal_core.timeutil import as_utc

# Named constraints so Alembic migrations are stable across SQLite and PostgreSQL.
# The largest integer a row id can be compared with: the SQLite driver raises OverflowError binding
# anything beyond a signed 64-bit integer, so larger "ids" are answered as not found before a query.
MAX_ROW_ID = 2**63 - 1

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every model. Flask-SQLAlchemy wraps it with `model_class=Base`."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always returned timezone-aware.

    SQLite keeps no zone, so values are normalised to naive UTC on the way in and get
    their zone back on the way out; PostgreSQL stores `timestamptz`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        """Naive UTC for SQLite, aware UTC for PostgreSQL."""
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        """An aware UTC datetime, whatever the backend returned (SQLite may give text)."""
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text from a func.* expression
            value = datetime.fromisoformat(value)
        return as_utc(value)


# JSON everywhere, JSONB on PostgreSQL (indexable, compact).
JSONType = JSON().with_variant(JSONB(), "postgresql")


def _sqlite_pragmas(dbapi_connection, _record):
    # Let SQLAlchemy, not the driver, decide when transactions begin (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the worker read while the web writes; busy_timeout waits for the write
    # lock instead of failing at once with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn):
    # BEGIN IMMEDIATE takes SQLite's single write lock up front. A deferred transaction
    # that read first and writes later fails with "database is locked" when another
    # process wrote in between; taking the lock at BEGIN serialises such transactions
    # instead (SQLite is the local/demo backend, so throughput matters less than safety).
    conn.exec_driver_sql("BEGIN IMMEDIATE")


# A pooled PostgreSQL connection that sat idle this long is pinged before it is used again:
# a restarted server leaves dead connections in the pool. One in steady use skips the ping
# (during an alert storm every request would pay a round trip for it); a restart takes
# longer than this, and a connection found dead by a statement invalidates the whole pool.
PING_AFTER_IDLE_SECONDS = 0.5


def engine_options(url: str) -> dict:
    """Engine keyword arguments that suit `url`'s backend."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 15}}
    return {"pool_size": 5, "max_overflow": 5, "pool_recycle": 1800}


def _ping_idle_connections(engine: Engine) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def idle_from(_dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection, record, _proxy):
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("pooled connection is dead") from exc  # the pool connects anew


def configure_engine(engine: Engine) -> Engine:
    """Install per-connection setup (SQLite pragmas, pings of idle PostgreSQL connections)."""
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        _ping_idle_connections(engine)
    return engine


def make_engine(url: str, **extra) -> Engine:
    """Create an engine for `url` with PagerPal's options (used by the worker and the CLI)."""
    return configure_engine(create_engine(url, **{**engine_options(url), **extra}))


def make_session_factory(engine: Engine) -> sessionmaker:
    """A session factory whose objects stay usable after commit (worker steps rely on it)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def current_session(session: Session | scoped_session) -> Session | None:
    """The session `session` stands for; None when it is a scoped session that holds none yet
    (it is not made to create one just to be asked about it)."""
    if isinstance(session, scoped_session):
        return session() if session.registry.has() else None
    return session


def in_transaction(session: Session | scoped_session) -> bool:
    """Whether `session` has begun a transaction (see `current_session`)."""
    current = current_session(session)
    return current is not None and current.in_transaction()


def is_postgres(session_or_engine) -> bool:
    """True when the session's (or engine's) database is PostgreSQL."""
    bind = session_or_engine.get_bind() if hasattr(session_or_engine, "get_bind") else session_or_engine
    return bind.dialect.name == "postgresql"


def get_or_not_found(session: Session, model, row_id, missing: str, belongs: Callable | None = None):
    """The `model` row with id `row_id` (when `belongs(row)` too), else NotFound(`missing`).

    A non-integer id is simply not found, never a database error. `belongs` scopes a child
    to its parent (an entry to its schedule), so another parent's id answers NotFound too.
    """
    row = session.get(model, row_id) if isinstance(row_id, int) else None
    if row is None or (belongs is not None and not belongs(row)):
        raise NotFound(missing)
    return row


@contextmanager
def unique_or_conflict(session: Session, message: str, *, fields: dict | None = None) -> Iterator[None]:
    """Run the block in a savepoint and flush it; a constraint it breaks becomes `Conflict(message)`.

    Uniqueness and foreign keys live in the schema, so services attempt the write and react
    to the database's answer instead of checking first (a check races with a concurrent
    writer). The savepoint keeps the caller's transaction usable after the refusal.
    """
    try:
        with session.begin_nested():
            yield
            session.flush()
    except IntegrityError:
        raise Conflict(message, fields=fields) from None


@dataclass(frozen=True)
class Keyset:
    """One keyset page of a list: the rows whose id is above `after` (all when None), by id, at most `limit`.

    List services take `page: Keyset | None`; with a page they order by id, so `after` is a
    stable cursor however the rows change between requests.
    """

    limit: int
    after: int | None = None

    def apply(self, query, id_column):
        """`query` narrowed to this page and ordered by `id_column`."""
        if self.after is not None:
            query = query.where(id_column > self.after)
        return query.order_by(id_column).limit(self.limit)
