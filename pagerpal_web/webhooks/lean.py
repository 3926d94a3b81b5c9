"""Less per-request machinery for the alert endpoints: no cookie session, JSON written directly.

Alert senders authenticate with a source key on every request and never carry a browser
session, so opening (verifying a signed cookie) and saving a session is pure overhead on
the hottest path PagerPal has. `skip_sessions` wraps the app's session interface so the
alert paths get Flask's null session (reading it finds nothing; writing to it fails
loudly); every other path keeps the app's own interface untouched. CSRF is already
exempt for the blueprint (create_app), and the API's browser-session hook skips /api/.
"""

from __future__ import annotations

import json

from flask import Flask, Response
from flask.sessions import SessionInterface


class _SkipSessionsFor(SessionInterface):
    """The app's session interface, except for `paths`, which get the null session."""

    def __init__(self, inner: SessionInterface, paths: frozenset[str]):
        self.inner = inner
        self.paths = paths

    def open_session(self, app, request):
        if request.path in self.paths:
            return self.make_null_session(app)
        return self.inner.open_session(app, request)

    def save_session(self, app, session, response) -> None:
        if self.is_null_session(session):
            return None
        return self.inner.save_session(app, session, response)

    def __getattr__(self, name):  # anything else the inner interface offers
        return getattr(self.inner, name)


def skip_sessions(app: Flask, paths) -> None:
    """Give `paths` (full request paths) no cookie session in `app`."""
    current = app.session_interface
    if isinstance(current, _SkipSessionsFor):
        current.paths = current.paths | frozenset(paths)
        return
    app.session_interface = _SkipSessionsFor(current, frozenset(paths))


def json_response(body: dict, status: int) -> Response:
    """`body` as a JSON response, serialised once without the app's JSON provider round."""
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status,
                    mimetype="application/json")
