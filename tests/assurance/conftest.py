"""Assurance tests reuse the worker's fixtures: a WorkerContext on the test database, run_cycle(now=...)."""

from tests.worker.conftest import fake_infobip, make_ctx  # noqa: F401  (fixtures)
