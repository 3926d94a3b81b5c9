"""The PagerPal web app. `create_app()` only wires things together."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from pagerpal_core.db import configure_engine, engine_options
from pagerpal_core.settings import PROJECT_ROOT, Settings
from pagerpal_web.config import SETTINGS_KEY
from pagerpal_web.extensions import csrf, db, login_manager, migrate


def _split_overrides(overrides: dict | None) -> tuple[dict, dict]:
    """Separate PagerPal settings (env names or field names) from plain Flask config keys."""
    from dataclasses import fields

    known = {f.metadata["env"] for f in fields(Settings)} | {f.name for f in fields(Settings)}
    settings_part, flask_part = {}, {}
    for key, value in (overrides or {}).items():
        (settings_part if key in known else flask_part)[key] = value
    return settings_part, flask_part


def _find_dir(name: str) -> str:
    for candidate in (PROJECT_ROOT / name, Path.cwd() / name):
        if candidate.is_dir():
            return str(candidate)
    return str(PROJECT_ROOT / name)


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app from the environment; `overrides` wins over it (tests pass a dict)."""
    settings_overrides, flask_overrides = _split_overrides(overrides)
    settings = Settings.from_env(overrides=settings_overrides)
    os.makedirs(settings.instance_path, exist_ok=True)

    app = Flask(__name__, instance_path=settings.instance_path, template_folder=_find_dir("templates"))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings.database_url),
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.session_cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,
        JSON_SORT_KEYS=False,
        **{SETTINGS_KEY: settings},
    )
    app.config.update(flask_overrides)
    from pagerpal_web import startup

    startup.init_logging(app)
    if settings.trusted_proxies:
        # Behind N proxies the client address (sign-in throttling, logs) and the scheme come
        # from X-Forwarded-*; without this every client would share the proxy's address.
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
    migrate.init_app(app, db, directory=_find_dir("migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)

    startup.init_app(app)  # refuses an unsafe production configuration (ConfigError)

    from pagerpal_web import api, auth, browser_safety, cli, errors, health, metrics, path_ids, requestlog, ui, webhooks

    requestlog.init_app(app)
    from pagerpal_web import audit_context  # after requestlog: it reads the request id
    audit_context.init_app(app)
    browser_safety.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    path_ids.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    metrics.init_app(app)
    app.register_blueprint(ui.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    app.register_blueprint(webhooks.bp, url_prefix="/api/v1")
    csrf.exempt(api.bp)
    csrf.exempt(webhooks.bp)
    cli.init_app(app)
    from pagerpal_web import actions

    actions.init_app(app)
    return app
