"""The web's one way to its parsed settings: `settings()` (or `settings(app)` outside a request)."""

from __future__ import annotations

from flask import Flask, current_app

from pagerpal_core.settings import Settings

# The Flask config key create_app stores the parsed Settings under.
SETTINGS_KEY = "PAGERPAL"


def settings(app: Flask | None = None) -> Settings:
    """The parsed PagerPal settings of `app` (default: the app serving this request or command)."""
    return (app or current_app).config[SETTINGS_KEY]
