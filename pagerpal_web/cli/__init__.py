"""`flask --app pagerpal_web pagerpal ...`: one AppGroup; each module adds thin commands."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

pagerpal = AppGroup("pagerpal", help="PagerPal administration.")


def fail(message: str) -> None:
    """Print `message` as an error and exit 1."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def init_app(app: Flask) -> None:
    app.cli.add_command(pagerpal)


# Command modules register on import (one line each).
from pagerpal_web.cli import (
    alerts,  # noqa: E402,F401
    audit,  # noqa: E402,F401
    demo,  # noqa: E402,F401
    notifications,  # noqa: E402,F401
    oncall,  # noqa: E402,F401
    ops,  # noqa: E402,F401
    selftest,  # noqa: E402,F401
    users,  # noqa: E402,F401
    worker,  # noqa: E402,F401
)
