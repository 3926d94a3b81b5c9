"""What starting the web process sets up: JSON log lines with secrets redacted, and the production refusal.

Both run from the app factory because `gunicorn "pagerpal_web:create_app()"` (with or
without deploy/gunicorn.conf.py) and the `flask` CLI call nothing else of ours before
serving: an unsafe production configuration must be refused, and log lines redacted, on
every path that serves requests. The refusal is core's `production_refusal`, the same
check the worker runs at its start.
"""

from __future__ import annotations

from flask import Flask

from pagerpal_core.logs import setup_logging
from pagerpal_core.schema import production_refusal
from pagerpal_core.settings import ConfigError
from pagerpal_web.config import settings
from pagerpal_web.extensions import db


def _loaded_for_cli_command() -> bool:
    """True when the `flask` CLI loads the app for a command other than `run`.

    The production refusal guards serving. Commands must still load an unmigrated or
    misconfigured app: `flask db upgrade` is what brings the database to the head, and
    `flask pagerpal check` lists exactly what is wrong.
    """
    import click

    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.info_name != "run"


def init_logging(app: Flask) -> None:
    """Send every log line to stdout as JSON with the configured secrets redacted."""
    config = settings(app)
    setup_logging(config.log_level, config.secret_values())


def init_app(app: Flask) -> None:
    """Refuse (ConfigError naming every problem) to serve an unsafe production configuration."""
    config = settings(app)
    if not config.is_production or _loaded_for_cli_command():
        return
    with app.app_context():
        problems = production_refusal(config, web=True, engine=db.engine)
    if problems:
        raise ConfigError(problems)
