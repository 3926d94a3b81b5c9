"""Self-service: a signed-in person changes their own details and password.

The rules are the ones admins are held to (`update_user`, `set_password`), plus one of
their own: changing your own password needs your current one, and ends every session of
the account (a stolen cookie dies with the old password); the web then signs the browser
that made the change in again.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from pagerpal_core.errors import Invalid
from pagerpal_core.models import User, UserSession
from pagerpal_core.security import password_problem, verify_password
from pagerpal_core.services.users import set_password, update_user


def update_profile(session: Session, user: User, *, name, email, timezone) -> User:
    """Change one's own name, email and time zone (validated as for admins; the role is not touched)."""
    return update_user(session, user, name=name, email=email, timezone=timezone)


def end_all_sessions(session: Session, user: User) -> int:
    """Sign `user` out everywhere on the server; returns how many sessions ended. Flushes."""
    result = session.execute(delete(UserSession).where(UserSession.user_id == user.id)
                             .execution_options(synchronize_session=False))
    session.flush()
    return result.rowcount or 0


def change_own_password(session: Session, user: User, *, current: str, new: str, confirm: str | None = None) -> int:
    """Replace `user`'s password after checking the current one; ends every session of the account.

    A wrong current password, a weak new one or a confirmation that differs is Invalid
    (naming the field) and nothing changes. Returns how many sessions ended.
    """
    errors = {}
    if not verify_password(user.password_hash, current if isinstance(current, str) else ""):
        errors["current_password"] = "is not your current password"
    problem = password_problem(new)
    if problem:
        errors["new_password"] = problem
    elif confirm is not None and confirm != new:
        errors["confirm"] = "does not match the new password"
    if errors:
        raise Invalid("password not changed", fields=errors)
    set_password(session, user, new)
    return end_all_sessions(session, user)
