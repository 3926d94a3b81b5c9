"""Alembic environment: runs under `flask db ...`, or plainly with PagerPal's settings."""

from alembic import context

import pagerpal_core.models  # noqa: F401  (registers every table)
from pagerpal_core.db import Base

config = context.config


def database_url() -> str:
    try:
        from flask import current_app

        return current_app.extensions["migrate"].db.engine.url.render_as_string(hide_password=False)
    except (ImportError, RuntimeError, KeyError):
        from pagerpal_core.settings import Settings

        return Settings.from_env().database_url


def configure(**kwargs) -> None:
    context.configure(
        target_metadata=Base.metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=True,
        **kwargs,
    )


def run_offline() -> None:
    configure(url=database_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    from pagerpal_core.db import make_engine

    connection = config.attributes.get("connection")
    if connection is not None:
        configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(database_url())
    with engine.connect() as connection:
        configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
