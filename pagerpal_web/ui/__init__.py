"""The server-rendered UI."""

from flask import Blueprint

bp = Blueprint("ui", __name__)

from pagerpal_web.ui import (  # noqa: E402,F401  (routes register on import)
    alert_sources,  # noqa: E402,F401
    audit,  # noqa: E402,F401
    calendar_feeds,  # noqa: E402,F401
    common,  # noqa: E402,F401  (template globals and filters)
    dashboard,
    heartbeats,  # noqa: E402,F401
    incidents,  # noqa: E402,F401
    login,
    maintenance,  # noqa: E402,F401
    policies,  # noqa: E402,F401
    profile,  # noqa: E402,F401
    schedules,  # noqa: E402,F401
    settings_page,  # noqa: E402,F401
    teams,  # noqa: E402,F401
    users,  # noqa: E402,F401
)
