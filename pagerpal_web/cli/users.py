"""User commands: create-admin."""

from __future__ import annotations

import sys

import click

from pagerpal_core.errors import DomainError
from pagerpal_core.services.users import create_user
from pagerpal_web.cli import fail, pagerpal
from pagerpal_web.extensions import db


@pagerpal.command("create-admin")
@click.option("--email", required=True, help="The admin's email (their login).")
@click.option("--name", default=None, help="Display name (default: the part before @).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_admin_command(email: str, name: str | None, password_stdin: bool):
    """Create an admin account. The password is prompted twice unless --password-stdin.

    Also the way back when no admin can sign in any more: /login offers first-run setup only
    on a database that never had an admin.
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(db.session, email=email, name=name, role="admin", password=password)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        fail(exc.message + (f" ({details})" if details else ""))
    click.echo(f"Created admin {user.email} (id {user.id}).")
