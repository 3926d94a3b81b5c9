"""Fixtures: an app on a fresh SQLite file and on an empty PostgreSQL database per test.

PostgreSQL tests skip with a reason when the server is not reachable, unless
PAGERPAL_REQUIRE_POSTGRES=1, which makes them fail (CI sets it).

Passwords are hashed with a one-iteration PBKDF2 in tests: scrypt's deliberate cost
was most of the suite's time (every account a fixture creates pays it), and what it
protects is checked once, with the real hasher, in tests/test_password_hashing.py.
"""

from __future__ import annotations

import functools
import gc
import os
import re
import threading

import pytest
from werkzeug.serving import make_server

from pagerpal_core.db import make_engine, make_session_factory
from tests import dbutil

REQUIRE_POSTGRES = os.environ.get("PAGERPAL_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgresql"]
_pg_counter = {"passed": 0, "ran": 0}


def pytest_configure(config):
    config.pagerpal_pg_reason = dbutil.postgres_unavailable_reason()
    use_cheap_password_hashing()
    compile_route_builders_once()
    compile_templates_once()
    share_compiled_sql()


def share_compiled_sql() -> None:
    """Let every engine of a test process reuse the SQL compiled for an equal dialect.

    Each test builds its own engines, and SQLAlchemy keys its compiled-statement cache by the
    dialect object, so every test compiled every statement again (a fifth of a typical test's
    time). Engines of one backend here talk to one server with the same options, so their
    dialects compile identically; the cache is keyed by what tells them apart instead.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.util import LRUCache

    store = LRUCache(20_000)

    class SharedCompiledCache:
        @staticmethod
        def _key(key):
            dialect = key[0]
            return (type(dialect), dialect.server_version_info, dialect.paramstyle, *key[1:])

        def get(self, key, default=None):
            return store.get(self._key(key), default)

        def __setitem__(self, key, value):
            store[self._key(key)] = value

        def clear(self):
            store.clear()

    shared = SharedCompiledCache()

    @event.listens_for(Engine, "engine_connect")
    def use_shared_cache(connection):
        if connection.engine._compiled_cache is not None:
            connection.engine._compiled_cache = shared


def compile_templates_once() -> None:
    """Share compiled Jinja templates between the apps of one test process (each app has its
    own environment and would compile every template again); keyed by the template's source."""
    from flask import Flask
    from jinja2 import BytecodeCache

    class SharedBytecode(BytecodeCache):
        store: dict = {}

        def load_bytecode(self, bucket):
            if bucket.key in self.store:
                bucket.bytecode_from_string(self.store[bucket.key])

        def dump_bytecode(self, bucket):
            self.store[bucket.key] = bucket.bytecode_to_string()

    create_environment = Flask.create_jinja_environment

    def create_with_shared_bytecode(self):
        environment = create_environment(self)
        environment.bytecode_cache = SharedBytecode()
        return environment

    Flask.create_jinja_environment = create_with_shared_bytecode


def compile_route_builders_once() -> None:
    """Compile each URL rule's builder once per test process instead of once per app.

    Every test builds its own app, and werkzeug generates and compiles two Python functions
    for each of ~200 routes: three quarters of create_app's time. The generated function
    reaches the rule's converters only through its `self` argument, so one compiled copy
    serves every identical rule.
    """
    from werkzeug.routing.rules import Rule

    compile_builder = Rule._compile_builder
    compiled: dict = {}

    def cached(self, append_unknown=True):
        key = (self.rule, self.subdomain, self.host, self.merge_slashes, repr(sorted((self.defaults or {}).items())),
               tuple(self._trace), append_unknown)
        if key not in compiled:
            compiled[key] = compile_builder(self, append_unknown)
        return compiled[key]

    Rule._compile_builder = cached


def use_cheap_password_hashing() -> None:
    """Make `hash_password` cheap in this process (verification reads the method from the hash)."""
    from werkzeug.security import generate_password_hash

    from pagerpal_core import security

    security.generate_password_hash = functools.partial(generate_password_hash, method="pbkdf2:sha256:1")


# Objects that outlive a test (imported modules, the shared compiled-SQL and template caches,
# session fixtures) only grow; every full garbage collection walked all of them again, a fifth of
# a test process's CPU. Moving the survivors of a collection out of the collector's sight
# (gc.freeze) every few tests keeps each collection to what recent tests made. Garbage is still
# collected: only objects reachable at that moment are frozen.
FREEZE_EVERY = 25
_finished = 0


def pytest_collection_finish(session):
    gc.collect()
    gc.freeze()


def pytest_runtest_logfinish(nodeid, location):
    global _finished
    _finished += 1
    if _finished % FREEZE_EVERY == 0:
        gc.collect()
        gc.freeze()


@pytest.fixture
def real_password_hashing(monkeypatch):
    """The production hasher (scrypt) for the test that checks it."""
    from werkzeug.security import generate_password_hash

    from pagerpal_core import security

    monkeypatch.setattr(security, "generate_password_hash", generate_password_hash)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    return dbutil.make_sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def pg_template(request):
    reason = request.config.pagerpal_pg_reason
    if reason:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PAGERPAL_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    name = dbutil.create_pg_database(prefix="pagerpal_tmpl")
    try:
        dbutil.upgrade(dbutil.pg_url(name))
        yield name
    finally:
        dbutil.drop_pg_database(name)


@pytest.fixture(scope="session")
def pg_pool(pg_template):
    """Migrated databases reused across this process's tests (reset between them)."""
    pool = dbutil.PgPool(pg_template)
    yield pool
    pool.close()


@pytest.fixture
def backend(request):
    return request.param


def pytest_generate_tests(metafunc):
    """Run each test that takes a database on both backends, unless a `backends(...)` mark names
    fewer (the closest mark wins: test, class, module). Tests of the web surface, whose outcome
    cannot depend on the database, carry `backends("sqlite")`: running them twice only cost time.
    SQL, locking, concurrency and the worker stay on both."""
    if "backend" in metafunc.fixturenames:
        mark = metafunc.definition.get_closest_marker("backends")
        metafunc.parametrize("backend", list(mark.args) if mark else BACKENDS, indirect=True)


@pytest.fixture
def database_url(request, backend, tmp_path):
    """A freshly migrated, empty database on `backend`, dropped afterwards."""
    if backend == "sqlite":
        yield dbutil.clone_sqlite(request.getfixturevalue("sqlite_template"), tmp_path)
        return
    yield from _pooled_pg_url(request.getfixturevalue("pg_pool"))


@pytest.fixture
def pg_database_url(request):
    """An empty, migrated PostgreSQL database for tests that only make sense there."""
    yield from _pooled_pg_url(request.getfixturevalue("pg_pool"))


def _pooled_pg_url(pool):
    name = pool.acquire()
    try:
        yield dbutil.pg_url(name)
    finally:
        pool.release(name)


def app_overrides(database_url: str, tmp_path, **extra) -> dict:
    return {
        "DATABASE_URL": database_url,
        "PAGERPAL_INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "ENVIRONMENT": "test",
        "TESTING": True,
        **extra,
    }


@pytest.fixture
def make_app(database_url, tmp_path):
    """Build an app on the test database with extra overrides: make_app(METRICS="open")."""
    from pagerpal_web import create_app

    apps = []

    def build(**extra):
        app = create_app(app_overrides(database_url, tmp_path, **extra))
        apps.append(app)
        return app

    yield build
    from pagerpal_web.extensions import db

    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    """A plain SQLAlchemy session (what the worker and core services use)."""
    factory = make_session_factory(engine)
    session = factory()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def session_factory(engine):
    return make_session_factory(engine)


class LiveServer:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def live_server(app):
    """The app served over a real socket by a threaded server."""
    with LiveServer(app) as server:
        yield server


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def pytest_runtest_logreport(report):
    """Count tests that ran on PostgreSQL, so CI can tell they were not all skipped."""
    if report.when == "call" and ("postgresql" in report.nodeid or "postgres_only" in report.keywords):
        _pg_counter["ran"] += 1
        _pg_counter["passed"] += int(report.passed)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    terminalreporter.write_line(f"PostgreSQL tests: {_pg_counter['passed']} passed of {_pg_counter['ran']} run")


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller, which sees every report, decides
    if REQUIRE_POSTGRES and _pg_counter["ran"] == 0 and session.testscollected:
        session.exitstatus = 1
