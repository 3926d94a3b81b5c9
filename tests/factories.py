"""Factories: each takes the session first and returns a flushed model."""

from __future__ import annotations

import itertools

from pagerpal_core.services.users import create_user

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery"


def make_user(session, *, role="responder", password=PASSWORD, email=None, name=None, contacts=None,
              active=True):
    n = next(_seq)
    user = create_user(session, email=email or f"user{n}@example.test", name=name or f"User {n}",
                       role=role, password=password, contact_methods=contacts)
    if not active:
        user.active = False
        session.flush()
    return user
