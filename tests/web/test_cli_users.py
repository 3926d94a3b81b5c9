"""`flask pagerpal create-admin`."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pagerpal_core.models import User
from pagerpal_web.extensions import db

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


def test_create_admin_with_password_stdin(app, runner):
    result = runner.invoke(args=["pagerpal", "create-admin", "--email", "root@example.test",
                                 "--password-stdin"], input="a-long-password\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "root@example.test"))
        assert user.role == "admin" and user.can_log_in


def test_create_admin_prompts_twice(runner):
    result = runner.invoke(args=["pagerpal", "create-admin", "--email", "p@example.test"],
                           input="a-long-password\na-long-password\n")
    assert result.exit_code == 0, result.output


def test_create_admin_existing_email_is_a_clear_error(runner):
    args = ["pagerpal", "create-admin", "--email", "twice@example.test", "--password-stdin"]
    assert runner.invoke(args=args, input="a-long-password\n").exit_code == 0
    again = runner.invoke(args=[*args[:3], "TWICE@example.test", "--password-stdin"], input="a-long-password\n")
    assert again.exit_code == 1 and "already exists" in again.output


def test_create_admin_rejects_a_short_password(runner):
    result = runner.invoke(args=["pagerpal", "create-admin", "--email", "s@example.test", "--password-stdin"],
                           input="short\n")
    assert result.exit_code == 1 and "password" in result.output
