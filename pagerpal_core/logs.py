"""Structured JSON logs on stdout, with a request id on every line and secrets redacted."""

from __future__ import annotations

import contextvars
import json
import logging
import sys

from pagerpal_core.security import redact
from pagerpal_core.timeutil import isoformat, utcnow

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; every string passes through redaction."""

    def __init__(self, secrets: list[str] | None = None):
        super().__init__()
        self.secrets = list(secrets or [])

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line: time, level, logger, message and any structured fields."""
        message = record.getMessage()
        entry = {
            "ts": isoformat(utcnow()),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False), self.secrets)


class RedactingFormatter(logging.Formatter):
    """Another formatter's finished line, passed through the same redaction as ours.

    For log lines PagerPal does not build itself, e.g. gunicorn's access log, whose
    records may quote a client's raw request.
    """

    def __init__(self, inner: logging.Formatter, secrets: list[str] | None = None):
        super().__init__()
        self.inner = inner
        self.secrets = list(secrets or [])

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's line with every configured secret replaced."""
        return redact(self.inner.format(record), self.secrets)


def setup_logging(level: str = "INFO", secrets: list[str] | None = None, stream=None) -> None:
    """Send all logging to `stream` (stdout) as JSON lines. Safe to call more than once."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(secrets))
    handler.set_name("pagerpal-json")
    for old in [h for h in root.handlers if h.get_name() == "pagerpal-json"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Werkzeug's dev-server access lines would duplicate ours.
    logging.getLogger("werkzeug").setLevel("WARNING")


def log_fields(**fields) -> dict:
    """`extra=` for a log call with structured fields: logger.info("x", extra=log_fields(a=1))."""
    return {"fields": fields}
