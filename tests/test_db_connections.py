"""Pooled PostgreSQL connections: pinged only after sitting idle, replaced when found dead; a
database that is gone answers 503 with Retry-After (senders retry), never a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

import pagerpal_core.db as pagerpal_db
from pagerpal_core.db import make_engine
from tests.dbutil import PG_ADMIN_URL

pytestmark = pytest.mark.postgres_only


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar()


def _terminate(pid: int) -> None:
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()


def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(pg_database_url, monkeypatch):
    engine = make_engine(pg_database_url, pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(engine)
        _terminate(first)  # the pooled connection is now dead, and has been idle "long enough"
        monkeypatch.setattr(pagerpal_db, "PING_AFTER_IDLE_SECONDS", 0.0)
        assert _backend_pid(engine) != first
    finally:
        engine.dispose()


def test_a_connection_in_steady_use_is_not_pinged_and_a_dead_one_fails_once(pg_database_url, monkeypatch):
    monkeypatch.setattr(pagerpal_db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    engine = make_engine(pg_database_url, pool_size=1, max_overflow=0)
    pings = []
    monkeypatch.setattr(engine.dialect, "do_ping", lambda dbapi_connection: pings.append(1) or True)
    try:
        first = _backend_pid(engine)
        for _ in range(5):
            _backend_pid(engine)
        assert pings == []  # no round trip spent on a connection in steady use
        _terminate(first)
        with pytest.raises(OperationalError) as raised:
            _backend_pid(engine)
        assert raised.value.connection_invalidated  # ... which throws the pool's connections away
        assert _backend_pid(engine) != first
    finally:
        engine.dispose()


@pytest.mark.backends("sqlite")  # the app's own database is never reached: it points elsewhere
def test_a_database_that_is_gone_answers_503_with_retry_after(make_app):
    app = make_app(DATABASE_URL="postgresql+psycopg2://postgres@127.0.0.1:9/none")  # nothing listens there
    client = app.test_client()
    response = client.post("/api/v1/alerts", json={"title": "Disk full"}, headers={"X-API-Key": "ppk_" + "x" * 40})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "database_unavailable"
    page = client.get("/login")
    assert page.status_code == 503 and b"Database unavailable" in page.data


def _driver_table(engine):
    from sqlalchemy import Column, Integer, MetaData, String, Table

    table = Table("driver_probe", MetaData(), Column("id", Integer, primary_key=True),
                  Column("name", String(20), nullable=False, unique=True), Column("hits", Integer, default=0))
    table.create(engine)
    return table


def test_a_driver_statement_is_prepared_once_per_connection_and_commits_on_its_own(pg_database_url):
    from sqlalchemy import bindparam, insert

    from pagerpal_core.driver_sql import DriverStatement, autocommitted

    engine = make_engine(pg_database_url, pool_size=1, max_overflow=0)
    try:
        table = _driver_table(engine)
        # `hits` is left to its column default (a constant, bound once by the statement).
        add = DriverStatement(insert(table).values(name=bindparam("name")).returning(table.c.id, table.c.hits))
        assert autocommitted(engine, add, {"name": "a"}) == (1, 0)
        assert autocommitted(engine, add, {"name": "b"}) == (2, 0)
        with engine.connect() as conn:  # committed: another connection sees both rows
            assert conn.execute(text("SELECT count(*) FROM driver_probe")).scalar() == 2
            prepared = conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar()
        assert prepared == 1  # the pool's one connection prepared it once, for both calls

        with pytest.raises(IntegrityError):  # SQLAlchemy's error, and the connection stays usable
            autocommitted(engine, add, {"name": "a"})
        assert autocommitted(engine, add, {"name": "c"})[0] == 4
    finally:
        engine.dispose()


def test_a_driver_statement_is_planned_once_not_on_every_execute(pg_database_url):
    from sqlalchemy import bindparam, update

    from pagerpal_core.driver_sql import DriverStatement, autocommitted

    engine = make_engine(pg_database_url, pool_size=1, max_overflow=0)
    try:
        table = _driver_table(engine)
        with engine.begin() as conn:
            conn.execute(table.insert().values(name="a"))
        bump = DriverStatement(update(table).where(table.c.name == bindparam("name"))
                               .values(hits=table.c.hits + 1).returning(table.c.hits))
        for hits in range(1, 9):
            assert autocommitted(engine, bump, {"name": "a"}) == (hits,)
        with engine.connect() as conn:  # the pool's one connection: the one that prepared it
            plans = conn.execute(text("SELECT generic_plans, custom_plans FROM pg_prepared_statements")).one()
        # Left to choose, PostgreSQL plans each of the first five runs afresh (custom plans).
        assert tuple(plans) == (8, 0)
    finally:
        engine.dispose()


def test_a_driver_statement_gets_every_kind_of_value_back_unchanged(pg_database_url):
    from datetime import date, datetime, timedelta, timezone
    from decimal import Decimal

    from sqlalchemy import BigInteger, Boolean, Date, DateTime, Float, Integer, Numeric, String, bindparam, select

    from pagerpal_core.driver_sql import DriverStatement, autocommitted

    types = {"text": String(), "number": Integer(), "big": BigInteger(), "real": Float(), "flag": Boolean(),
             "at": DateTime(timezone=True), "nothing": Integer(),
             "day": Date(), "amount": Numeric(asdecimal=True), "odd": Float()}  # the last three: psycopg2's own
    echo = DriverStatement(select(*[bindparam(name, type_=type_).label(name) for name, type_ in types.items()]))
    engine = make_engine(pg_database_url, pool_size=1, max_overflow=0)
    try:
        for text_value in ("it's", "back\\slash \\' and '' quotes", "naïve — 警报 🚨", "", "%(text)s %s $1",
                           "'); DROP TABLE incidents; --"):
            values = {"text": text_value, "number": -7, "big": 2 ** 62, "real": -0.1 + 1e-17, "flag": True,
                      "at": datetime(2026, 12, 3, 6, 30, 0, 123456, tzinfo=timezone(timedelta(hours=-5))),
                      "nothing": None, "day": date(2026, 2, 28), "amount": Decimal("-12.50"), "odd": float("inf")}
            assert autocommitted(engine, echo, values) == tuple(values.values())
    finally:
        engine.dispose()


def test_a_server_without_the_plan_setting_still_runs_driver_statements(pg_database_url, monkeypatch):
    from sqlalchemy import bindparam, insert

    from pagerpal_core import driver_sql

    monkeypatch.setattr(driver_sql, "GENERIC_PLANS", "SET no_such_setting_before_pg12 = 1")  # refused
    engine = make_engine(pg_database_url, pool_size=1, max_overflow=0)
    try:
        table = _driver_table(engine)
        add = driver_sql.DriverStatement(insert(table).values(name=bindparam("name")).returning(table.c.id))
        assert driver_sql.autocommitted(engine, add, {"name": "a"}) == (1,)
        assert driver_sql.autocommitted(engine, add, {"name": "b"}) == (2,)
    finally:
        engine.dispose()


def test_a_driver_statement_on_a_dead_connection_fails_once_and_the_next_prepares_anew(pg_database_url, monkeypatch):
    from sqlalchemy import bindparam, insert

    from pagerpal_core.driver_sql import DriverStatement, autocommitted

    monkeypatch.setattr(pagerpal_db, "PING_AFTER_IDLE_SECONDS", 3600.0)  # the statement finds it dead
    engine = make_engine(pg_database_url, pool_size=1, max_overflow=0)
    try:
        table = _driver_table(engine)
        add = DriverStatement(insert(table).values(name=bindparam("name")).returning(table.c.id))
        autocommitted(engine, add, {"name": "a"})
        first = _backend_pid(engine)
        _terminate(first)
        with pytest.raises(OperationalError) as raised:
            autocommitted(engine, add, {"name": "b"})
        assert raised.value.connection_invalidated
        assert autocommitted(engine, add, {"name": "b"}) is not None  # a new connection, prepared again
        assert _backend_pid(engine) != first
    finally:
        engine.dispose()


def test_a_driver_connection_that_broke_after_its_statement_is_replaced_not_raised(pg_database_url):
    from sqlalchemy import bindparam, insert

    from pagerpal_core.driver_sql import Autocommitted, DriverStatement

    engine = make_engine(pg_database_url, pool_size=1, max_overflow=0)
    try:
        table = _driver_table(engine)
        add = DriverStatement(insert(table).values(name=bindparam("name")).returning(table.c.id))
        connection = Autocommitted(engine)
        assert connection.execute(add, {"name": "a"}) == (1,)
        connection._fairy.driver_connection.close()  # gone between the statement and the return
        connection.close()  # the row is committed: giving the connection back must not fail the alert
        with engine.connect() as conn:  # the pool handed out a working connection again
            assert conn.execute(text("SELECT count(*) FROM driver_probe")).scalar() == 1
    finally:
        engine.dispose()
