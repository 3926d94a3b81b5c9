"""Path ids the database cannot hold are a 404, not a driver overflow (SQLite: past 2^63).

The routes keep werkzeug's unbounded `int` converter, so a huge id still matches its route
(a bounded converter would turn it into a misleading 405 on some paths). The API checks
ids after authenticating (pagerpal_web.api.common); this covers every other page.
"""

from __future__ import annotations

from flask import Flask, abort, request

from pagerpal_core.db import MAX_ROW_ID


def init_app(app: Flask) -> None:
    @app.before_request
    def reject_impossible_ids():
        if request.path.startswith("/api/"):
            return None
        for name, value in (request.view_args or {}).items():
            if isinstance(value, int) and not 0 <= value <= MAX_ROW_ID:
                abort(404, f"No {name.replace('_id', '').replace('_', ' ')} {value}.")
        return None
