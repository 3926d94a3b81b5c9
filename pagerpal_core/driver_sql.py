"""Autocommitted statements run straight on a pooled psycopg2 connection, prepared once.

The alert path's hottest statements (a repeat's token-and-count, a new unrouted incident
with its timeline rows) are single statements that commit on their own. Run through a
SQLAlchemy Connection, each paid for an isolation-level switch, an execution context and
result wrapping — more CPU than PostgreSQL spent on it — and PostgreSQL parsed and planned
the same CTE on every request. Here a Core statement is compiled once per dialect, PREPAREd
once per pooled connection (parse and plan once — its generic plan, see GENERIC_PLANS; the
name lives in the connection's pool record, so a replaced connection prepares again), and
executed with the parameters bound exactly as SQLAlchemy would bind them (each type's own
bind processor), written into the EXECUTE as psycopg2 would write them (`_execute_text`).

Errors keep SQLAlchemy's shape: a driver error is raised as the matching
sqlalchemy.exc.DBAPIError subclass, and a lost connection invalidates the pool as a
Connection would (the next checkout connects anew).

Only statements whose result columns need no conversion (ids, counts, floats, booleans)
belong here: rows come back as the driver returns them.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from itertools import count
from typing import NamedTuple

from psycopg2.extensions import QuotedString, adapt
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.types import NullType, TypeDecorator

_numbers = count(1)
# Left to choose, PostgreSQL plans a prepared statement afresh on each EXECUTE when its
# generic plan looks costlier than the custom ones: the new-incident statement's CTEs took
# 0.46 ms to plan, every time, for 0.16 ms of execution; its generic plan runs in 0.14 ms.
# Set once on each connection the first time it prepares; only prepared statements (these)
# read it: SQLAlchemy's own queries are sent as plain text.
GENERIC_PLANS = "SET plan_cache_mode = force_generic_plan"
_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")


class _Compiled(NamedTuple):
    sql: str            # the statement as SQLAlchemy would run it (what listeners see)
    prepare: str        # PREPARE name (types) AS ...
    execute: str        # EXECUTE name (%(param)s, ...), as errors quote it
    order: list         # parameter names in $n order
    processors: list    # [(parameter name, its bind processor or None)]
    fixed: dict         # the bound values of the statement's own literals and defaults


class DriverStatement:
    """A Core statement for `autocommitted` (PostgreSQL + psycopg2 only)."""

    def __init__(self, statement: ClauseElement):
        self.statement = statement
        self.name = f"pp_stmt_{next(_numbers)}"
        self._by_dialect: dict = {}

    def compiled(self, dialect) -> _Compiled:
        """The statement compiled for `dialect` (once)."""
        done = self._by_dialect.get(dialect)
        if done is None:
            done = self._by_dialect[dialect] = self._compile(dialect)
        return done

    def _compile(self, dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        order: list[str] = []

        def positional(match):  # %(name)s → $n (the same n for every use of one name)
            if match.group(0) == "%%":
                return "%"
            name = match.group(1)
            if name not in order:
                order.append(name)
            return f"${order.index(name) + 1}"

        body = _PYFORMAT.sub(positional, compiled.string)
        binds = compiled.binds
        types = [_pg_type(binds[name].type, dialect) for name in order]
        prepare = f"PREPARE {self.name} ({', '.join(types)}) AS {body}"
        execute = f"EXECUTE {self.name} ({', '.join(f'%({name})s' for name in order)})"
        # Columns an INSERT/UPDATE leaves to their Python-side defaults: constants are bound
        # once, here; a callable default must be given as a parameter instead.
        defaults = {**{column.key: column.default for column in compiled.insert_prefetch},
                    **{column.key: column.onupdate for column in compiled.update_prefetch}}
        processors, fixed = [], {}
        for name in order:
            bind, process = binds[name], binds[name].type.bind_processor(dialect)
            if name in defaults:
                default = defaults[name]
                if default is None or not default.is_scalar:
                    raise ValueError(f"{self.name}: give {name!r} as a parameter (its default is not a constant)")
                value = default.arg
            elif bind.required:
                processors.append((name, process))
                continue
            else:  # a literal of the statement (`greatest(0, ...)`)
                value = bind.value
            fixed[name] = value if process is None else process(value)
        return _Compiled(compiled.string, prepare, execute, order, processors, fixed)


def _use_generic_plans(cursor, dialect) -> None:
    try:
        cursor.execute(GENERIC_PLANS)
    except dialect.loaded_dbapi.Error:  # a server before PostgreSQL 12: it plans as it chooses
        if cursor.connection.closed:
            raise


def _execute_text(name: str, order: list, values: dict, connection) -> bytes:
    """`EXECUTE name (literal, ...)`, the values written as psycopg2 would write them.

    psycopg2's own interpolation looks up a `prepare` method on every value's adapter and,
    for numbers and NULL, raises and clears an AttributeError each time (writing them here
    cut the alert path's instructions in process by 11 %, callgrind). Strings still go
    through psycopg2's quoting (the connection's encoding and escaping rules); numbers, NULL
    and timestamps need none.
    """
    if not order:
        return f"EXECUTE {name}".encode()
    return b"EXECUTE " + name.encode() + b" (" + b", ".join([_literal(values[key], connection) for key in order]) + b")"


def _literal(value, connection) -> bytes:
    kind = type(value)
    if kind is str:
        quoted = QuotedString(value)
        quoted.prepare(connection)
        return quoted.getquoted()
    if value is None:
        return b"NULL"
    if kind is int:
        return b"%d" % value
    if kind is bool:
        return b"true" if value else b"false"
    if kind is float and math.isfinite(value):
        return repr(value).encode()
    if kind is datetime and value.tzinfo is not None:  # as psycopg2 writes an aware datetime
        return b"'" + value.isoformat().encode() + b"'::timestamptz"
    adapted = adapt(value)  # anything else as psycopg2 adapts it
    if hasattr(adapted, "prepare"):
        adapted.prepare(connection)
    return adapted.getquoted()


def _pg_type(type_, dialect) -> str:
    """The PostgreSQL type a parameter is declared as (`unknown`: inferred from its use)."""
    if isinstance(type_, NullType):
        return "unknown"
    if isinstance(type_, TypeDecorator):
        type_ = type_.load_dialect_impl(dialect)
    return dialect.type_compiler_instance.process(type_.dialect_impl(dialect))


class Autocommitted:
    """A pooled driver connection in autocommit mode for a few statements, each its own
    transaction: checked out at the first, returned by `close()` (a request's statements
    then share one checkout)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._fairy = None

    def execute(self, statement: DriverStatement, params: dict) -> tuple | None:
        """Run `statement` with `params`; its first row, or None."""
        engine, dialect = self.engine, self.engine.dialect
        compiled = statement.compiled(dialect)
        values = {**compiled.fixed, **{name: (params[name] if process is None else process(params[name]))
                                       for name, process in compiled.processors}}
        if self._fairy is None:
            self._fairy = engine.raw_connection()
            self._fairy.driver_connection.autocommit = True
        fairy = self._fairy
        cursor = None
        try:
            cursor = fairy.driver_connection.cursor()
            prepared = fairy.info.setdefault("prepared", set())
            if statement.name not in prepared:
                if not prepared:
                    _use_generic_plans(cursor, dialect)
                cursor.execute(compiled.prepare)
                prepared.add(statement.name)
            for listener in engine.dispatch.before_cursor_execute:  # instrumentation sees the SQL run
                listener(None, cursor, compiled.sql, values, None, False)
            cursor.execute(_execute_text(statement.name, compiled.order, values, fairy.driver_connection))
            return cursor.fetchone() if cursor.description is not None else None
        except dialect.loaded_dbapi.Error as error:
            disconnected = dialect.is_disconnect(error, fairy.driver_connection, cursor)
            if disconnected:
                # As a Connection does: this connection and every older one in the pool go.
                engine.pool._invalidate(fairy, error)
                self._fairy = None
                fairy.close()
            raise sa_exc.DBAPIError.instance(compiled.execute, values, error, dialect.loaded_dbapi.Error,
                                             connection_invalidated=disconnected, dialect=dialect) from error
        finally:
            if cursor is not None and not cursor.closed:
                cursor.close()

    def close(self) -> None:
        """Give the connection back to the pool, out of autocommit mode. Never raises: the
        statements are committed by now, and an error here would have the sender retry an
        alert that was already counted."""
        fairy, self._fairy = self._fairy, None
        if fairy is None:
            return
        try:
            fairy.driver_connection.autocommit = False
        except Exception as error:  # the connection broke after its last statement: replace it
            fairy.invalidate(error)
        fairy.close()


def autocommitted(engine: Engine, statement: DriverStatement, params: dict) -> tuple | None:
    """Run `statement` with `params` as its own transaction; its first row, or None."""
    connection = Autocommitted(engine)
    try:
        return connection.execute(statement, params)
    finally:
        connection.close()
