"""The server-rendered UI."""

from flask import Blueprint

bp = Blueprint("ui", __name__)

from pagerpal_web.ui import dashboard, login  # noqa: E402,F401  (routes register on import)
