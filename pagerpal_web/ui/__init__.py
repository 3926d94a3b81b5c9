"""The server-rendered UI."""

from flask import Blueprint

bp = Blueprint("ui", __name__)

from pagerpal_web.ui import dashboard, login  # noqa: E402,F401  (routes register on import)
from pagerpal_web.ui import common  # noqa: E402,F401  (template globals and filters)
from pagerpal_web.ui import incidents  # noqa: E402,F401
from pagerpal_web.ui import users  # noqa: E402,F401
from pagerpal_web.ui import settings_page  # noqa: E402,F401
from pagerpal_web.ui import teams  # noqa: E402,F401
from pagerpal_web.ui import schedules  # noqa: E402,F401
from pagerpal_web.ui import policies  # noqa: E402,F401
from pagerpal_web.ui import alert_sources  # noqa: E402,F401
