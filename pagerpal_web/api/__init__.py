"""The management API under /api/v1: HTTP Basic auth of a real account, roles per route.

One module per resource. Safe methods need the viewer role; anything else needs the role
its view declares with `@requires_role`, admin when it declares none.
"""

from flask import Blueprint

from pagerpal_web.auth import api_guard

bp = Blueprint("api", __name__)
bp.before_request(api_guard)

from pagerpal_web.api import (  # noqa: E402,F401  (routes register on import)
    alert_sources,
    escalation_policies,
    incidents,
    notifications,
    oncall,
    openapi,
    schedules,
    system,
    teams,
    users,
)
