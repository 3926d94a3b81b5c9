"""Assurance tests reuse the worker's fixtures (a WorkerContext, run_cycle(now=...)) and the API's accounts."""

from tests.api.conftest import accounts, admin  # noqa: F401  (fixtures)
from tests.web.conftest import make_account  # noqa: F401  (fixture)
from tests.worker.conftest import fake_infobip, make_ctx  # noqa: F401  (fixtures)
