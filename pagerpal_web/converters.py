"""URL converters: path ids the database cannot hold are a 404, not a driver overflow."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

from pagerpal_core.db import MAX_ROW_ID


class IdConverter(IntegerConverter):
    """`<int:...>` bounded to what the database can store; larger numbers do not match the route."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ROW_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_app(app) -> None:
    """Replace the `int` converter; must run before any blueprint is registered."""
    app.url_map.converters["int"] = IdConverter
