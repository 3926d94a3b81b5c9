"""Helpers for web tests: accounts created through the app's own database session."""

from __future__ import annotations

import base64

import pytest

from pagerpal_web.extensions import db
from tests.conftest import csrf_token_from
from tests.factories import PASSWORD, make_user


@pytest.fixture
def make_account(app):
    """Create a user in the app's database and commit: make_account(role="viewer")."""
    def make(**kwargs):
        with app.app_context():
            user = make_user(db.session, **kwargs)
            db.session.commit()
            db.session.expunge(user)
            return user
    return make


def basic(email: str, password: str = PASSWORD) -> dict:
    token = base64.b64encode(f"{email}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def login(client, email: str, password: str = PASSWORD):
    """Sign in through the real form, CSRF token included."""
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})
