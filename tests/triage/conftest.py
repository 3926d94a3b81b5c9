"""Triage tests reuse the worker's fixtures (a worker context, the fake Infobip) and the web's accounts."""

from tests.web.conftest import make_account  # noqa: F401  (fixture re-exported)
from tests.worker.conftest import fake_infobip, make_ctx  # noqa: F401  (fixtures re-exported)
