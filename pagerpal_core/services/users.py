"""Users: accounts that log in, and responder identities that only get paged."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from pagerpal_core.db import MAX_ROW_ID, Keyset, get_or_not_found, is_postgres, unique_or_conflict
from pagerpal_core.errors import Conflict, Forbidden, Invalid, NotFound
from pagerpal_core.locks import ADMIN_GUARD_LOCK_ID
from pagerpal_core.models import AppState, ContactMethod, Incident, ScheduleEntry, TeamMembership, User
from pagerpal_core.models.incidents import OPEN_STATUSES
from pagerpal_core.models.users import CHANNELS, ROLES
from pagerpal_core.security import hash_password, mask_destination, password_problem, verify_password
from pagerpal_core.services.audit import record_audit, snapshot
from pagerpal_core.services.timeline import record_event
from pagerpal_core.services.validation import UNSET, clean_text, clean_timezone, raise_if, text_problem
from pagerpal_core.timeutil import utcnow

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
# app_state key recorded when the first admin account is created, however it was created.
ADMIN_EXISTED_KEY = "admin_existed"
# What the audit log keeps of a user (the password hash only as set / not set: it is masked).
USER_AUDIT_FIELDS = ("email", "name", "role", "timezone", "active", "password_hash")
CONTACT_AUDIT_FIELDS = ("user_id", "channel", "destination", "enabled")


def normalize_email(email) -> str:
    """The address trimmed and lower-cased ("" for a non-string), as addresses are compared."""
    return email.strip().lower() if isinstance(email, str) else ""


def validate_contact(channel, destination) -> str | None:
    """Why (channel, destination) is unusable, or None."""
    if channel not in CHANNELS:
        return f"channel must be one of {', '.join(CHANNELS)}"
    if not isinstance(destination, str) or not destination.strip():
        return "destination is required"
    destination = destination.strip()
    if channel == "email" and not EMAIL_RE.match(destination):
        return "must be an email address"
    if channel in ("sms", "whatsapp") and not E164_RE.match(destination):
        return "must be an E.164 phone number such as +14155550123"
    if channel == "webhook":
        from pagerpal_core.services.webhooks import webhook_url_problem  # webhooks imports models only

        return webhook_url_problem(destination)
    if len(destination) > 254:
        return "must be at most 254 characters"
    return None


def _validate_user_fields(*, email=None, name=None, role=None, password=None, timezone=None,
                          check_email=True) -> dict:
    errors = {}
    if check_email and not EMAIL_RE.match(normalize_email(email)):
        errors["email"] = "must be an email address"
    elif check_email and len(email) > 254:
        errors["email"] = "must be at most 254 characters"
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 200):
        errors["name"] = "is required, at most 200 characters"
    elif name is not None and text_problem(name):
        errors["name"] = text_problem(name)
    if role is not None and role not in ROLES:
        errors["role"] = f"must be one of {', '.join(ROLES)}"
    if password is not None:
        problem = password_problem(password)
        if problem:
            errors["password"] = problem
    if timezone is not None:
        try:
            ZoneInfo(timezone) if isinstance(timezone, str) and timezone else ZoneInfo("")
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = "must be an IANA time zone such as Europe/Berlin"
    return errors


def get_user(session: Session, user_id: int) -> User:
    """The user with `user_id`, or NotFound."""
    return get_or_not_found(session, User, user_id, f"user {user_id} not found")


def list_users(session: Session, *, page: Keyset | None = None) -> list[User]:
    """Every user with contact methods loaded: active first, then by name (by id for a keyset `page`)."""
    query = select(User).options(selectinload(User.contact_methods))
    if page is not None:
        return list(session.scalars(page.apply(query, User.id)))
    return list(session.scalars(query.order_by(User.active.desc(), User.name, User.id)))


def list_active_users(session: Session, *, roles: tuple[str, ...] | None = None) -> list[User]:
    """Active users by name (only those whose role is in `roles` when given): the choices of user pickers."""
    query = select(User).where(User.active.is_(True))
    if roles is not None:
        query = query.where(User.role.in_(roles))
    return list(session.scalars(query.order_by(User.name, User.id)))


@dataclass
class UserFootprint:
    """What a user is part of: their team memberships, open incidents assigned, shifts still to come."""

    memberships: list[TeamMembership]
    open_assigned: int
    future_entries: int


def user_footprint(session: Session, user: User, *, now: datetime) -> UserFootprint:
    """The user's teams and counts of open assigned incidents and entries ending after `now`.

    The user page shows it, and the deactivation page counts what deactivating would touch.
    """
    memberships = list(session.scalars(select(TeamMembership).where(TeamMembership.user_id == user.id)))
    open_assigned = session.scalar(select(func.count(Incident.id)).where(
        Incident.assignee_id == user.id, Incident.status.in_(OPEN_STATUSES))) or 0
    future_entries = session.scalar(select(func.count(ScheduleEntry.id)).where(
        ScheduleEntry.user_id == user.id, ScheduleEntry.ends_at > now)) or 0
    return UserFootprint(memberships=memberships, open_assigned=open_assigned, future_entries=future_entries)


def find_user_by_email(session: Session, email: str) -> User | None:
    """The user with this address (case-insensitive), or None."""
    return session.scalar(select(User).where(func.lower(User.email) == normalize_email(email)))


def create_user(session: Session, *, email: str, name: str | None = None, role: str = "responder",
                password: str | None = None, timezone: str = "UTC",
                contact_methods: list[dict] | None = None) -> User:
    """Create a user; without `password` it is a responder identity that cannot log in."""
    name = name if name is not None else (email.split("@")[0] if isinstance(email, str) else "")
    errors = _validate_user_fields(email=email, name=name, role=role, password=password, timezone=timezone)
    for i, method in enumerate(contact_methods or []):
        if not isinstance(method, dict):
            errors[f"contact_methods[{i}]"] = "must be an object"
            continue
        problem = validate_contact(method.get("channel"), method.get("destination"))
        if problem:
            errors[f"contact_methods[{i}]"] = problem
    if errors:
        raise Invalid("invalid user", fields=errors)
    user = User(email=email.strip(), name=name.strip(), role=role, timezone=timezone,
                password_hash=hash_password(password) if password else None)
    for method in contact_methods or []:
        user.contact_methods.append(ContactMethod(
            channel=method["channel"], destination=method["destination"].strip(),
            enabled=bool(method.get("enabled", True))))
    with unique_or_conflict(session, f"a user with email {email.strip()} already exists",
                            fields={"email": "already in use"}):
        session.add(user)
    if role == "admin":
        record_admin_existed(session, user)
    record_audit(session, action="user.created", object_type="user", object_id=user.id,
                 after=snapshot(user, *USER_AUDIT_FIELDS))
    return user


def _password_action(before_hash, after_hash) -> str:
    if after_hash is None:
        return "user.password_removed"
    return "user.password_set" if before_hash is None else "user.password_changed"


def set_password(session: Session, user: User, password: str | None, *, audit: bool = True) -> User:
    """Set (or with None, remove) a user's password; existing sessions are signed out.

    `audit=False` when the caller records the change in its own audit row (update_user).
    """
    if password is not None:
        problem = password_problem(password)
        if problem:
            raise Invalid("invalid password", fields={"password": problem})
    removes_admin_login = not password and user.role == "admin"
    if removes_admin_login:
        lock_admin_changes(session)
    before_hash = user.password_hash
    user.password_hash = hash_password(password) if password else None
    user.auth_version = (user.auth_version or 1) + 1
    session.flush()
    if removes_admin_login:
        ensure_login_admin(session)
    if audit:
        record_audit(session, action=_password_action(before_hash, user.password_hash), object_type="user",
                     object_id=user.id, before={"password_hash": before_hash},
                     after={"password_hash": user.password_hash})
    return user


def set_role(session: Session, user: User, role: str, *, audit: bool = True) -> User:
    """Change `user`'s role; refuses (Conflict) to take the last login-capable admin away.

    `audit=False` when the caller records the change in its own audit row (update_user).
    """
    if role not in ROLES:
        raise Invalid("invalid role", fields={"role": f"must be one of {', '.join(ROLES)}"})
    if role != user.role:
        old_role, was_admin = user.role, user.role == "admin"
        lock_admin_changes(session)  # before the write: see locks.ADMIN_GUARD_LOCK_ID
        user.role = role
        user.auth_version = (user.auth_version or 1) + 1
        session.flush()
        if role == "admin":
            record_admin_existed(session, user)
        elif was_admin:
            ensure_login_admin(session)
        if audit:
            record_audit(session, action="user.role_changed", object_type="user", object_id=user.id,
                         before={"role": old_role}, after={"role": role})
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active, login-enabled user with these credentials, or None (constant work either way)."""
    user = find_user_by_email(session, email) if isinstance(email, str) else None
    ok = verify_password(user.password_hash if user else None, password or "")
    if user is None or not ok or not user.can_log_in:
        return None
    return user


def has_login_admin(session: Session) -> bool:
    """True when some active admin can log in (`flask pagerpal check` fails otherwise)."""
    return session.scalar(select(func.count(User.id)).where(
        User.role == "admin", User.active.is_(True), User.password_hash.is_not(None))) > 0


def lock_admin_changes(session: Session) -> None:
    """Serialise, database-wide, every change that can leave no admin able to sign in.

    Held until the transaction ends. Take it before writing: a writer that already holds a
    user's row lock and then waits here could deadlock with the holder updating that row.
    """
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:lock_id)"), {"lock_id": ADMIN_GUARD_LOCK_ID})
    # SQLite needs nothing more: every transaction begins with BEGIN IMMEDIATE
    # (pagerpal_core.db), so it already holds the database's only write lock until it ends.


def record_admin_existed(session: Session, user: User, now: datetime | None = None) -> None:
    """Remember for good that an admin account exists (first-run setup is then never offered)."""
    if session.get(AppState, ADMIN_EXISTED_KEY) is not None:
        return
    try:
        with session.begin_nested():
            session.add(AppState(key=ADMIN_EXISTED_KEY, value=str(user.id), created_at=now or utcnow()))
            session.flush()
    except IntegrityError:
        pass  # a concurrent transaction recorded it first; the fact is the same


def admin_ever_existed(session: Session) -> bool:
    """True once any admin account was ever created, whatever became of it since.

    Besides the app_state marker, any user with the admin role (even deactivated) and the
    claim rows of earlier first-run setups count, so databases from before the marker are
    covered too.
    """
    marker = session.scalar(select(AppState.key).where(
        or_(AppState.key == ADMIN_EXISTED_KEY, AppState.key.like("bootstrap:%"))).limit(1))
    if marker is not None:
        return True
    return session.scalar(select(User.id).where(User.role == "admin").limit(1)) is not None


def bootstrap_first_admin(session: Session, *, email: str, name: str, password: str,
                          now: datetime | None = None) -> User:
    """Create the first admin on a database that never had one — exactly once, ever.

    Once any admin existed, losing every admin login is recovered with
    `flask pagerpal create-admin` on the server, never through the web: an anonymous form
    would let whoever reaches /login first take the install over.

    Two people submitting at the same moment both see "no admin"; both then insert the
    claim row `bootstrap:0`, and its primary key lets only one of them commit.
    """
    if admin_ever_existed(session):
        raise Conflict("PagerPal already has an admin; sign in instead "
                       "(no admin left? run `flask pagerpal create-admin` on the server)")
    claim_key = "bootstrap:0"
    user = create_user(session, email=email, name=name, role="admin", password=password or "")
    try:
        with session.begin_nested():
            session.add(AppState(key=claim_key, value=str(user.id), created_at=now or utcnow()))
            session.flush()
    except IntegrityError:
        raise Conflict("another person just completed first-run setup; sign in instead") from None
    return user


def deactivate_user(session: Session, user: User, *, actor: User | None = None,
                    now: datetime | None = None) -> User:
    """Deactivate `user`: history stays; open incidents assigned to them get a warning.

    On-call resolution skips inactive users, so they drop out of paging at once.
    """
    now = now or utcnow()
    if not user.active:
        return user
    lock_admin_changes(session)  # before the write: see locks.ADMIN_GUARD_LOCK_ID
    user.active = False
    user.deactivated_at = now
    user.auth_version = (user.auth_version or 1) + 1
    session.flush()
    if user.role == "admin":
        ensure_login_admin(session)
    record_audit(session, action="user.deactivated", object_type="user", object_id=user.id,
                 before={"active": True}, after={"active": False})
    incidents = session.scalars(select(Incident).where(
        Incident.assignee_id == user.id, Incident.status.in_(OPEN_STATUSES)))
    for incident in incidents:
        record_event(session, incident, "assignee_deactivated",
                     f"Assignee {user.name} was deactivated; reassign this incident.",
                     actor=actor, detail={"user_id": user.id}, now=now)
    return user


def reactivate_user(session: Session, user: User) -> User:
    """Make a deactivated user active again; they rejoin paging and on-call resolution."""
    was_active = user.active
    user.active = True
    user.deactivated_at = None
    session.flush()
    if not was_active:
        record_audit(session, action="user.reactivated", object_type="user", object_id=user.id,
                     before={"active": False}, after={"active": True})
    return user


# --- profile changes --------------------------------------------------------------------

def ensure_login_admin(session: Session) -> None:
    """Refuse (Conflict) a change that leaves nobody able to sign in as admin.

    The count runs under the admin-guard lock, after any concurrent change that held it has
    committed; each statement of a READ COMMITTED transaction sees those commits.
    """
    lock_admin_changes(session)
    session.flush()
    if not has_login_admin(session):
        raise Conflict("this change would leave no active admin who can log in; promote someone else first")


def update_user(session: Session, user: User, *, name=UNSET, email=UNSET, timezone=UNSET, role=UNSET,
                password=UNSET) -> User:
    """Change any of name, email, time zone, role, password (None removes the login).

    Validates everything before changing anything; refuses to leave no login-enabled admin.
    """
    errors: dict = {}
    if name is not UNSET:
        name = clean_text(name, "name", errors, max_len=200)
    if timezone is not UNSET:
        timezone = clean_timezone(timezone, "timezone", errors)
    if email is not UNSET and (not isinstance(email, str) or not EMAIL_RE.match(normalize_email(email))
                               or len(email) > 254):
        errors["email"] = "must be an email address of at most 254 characters"
    if role is not UNSET and role not in ROLES:
        errors["role"] = f"must be one of {', '.join(ROLES)}"
    if password not in (UNSET, None):
        problem = password_problem(password)
        if problem:
            errors["password"] = problem
    raise_if(errors, "invalid user")
    # Every write below happens under the admin-guard lock (ensure_login_admin ends this).
    lock_admin_changes(session)
    before = snapshot(user, *USER_AUDIT_FIELDS)
    if role is not UNSET:
        set_role(session, user, role, audit=False)
    if password is not UNSET:
        set_password(session, user, password, audit=False)
    if name is not UNSET:
        user.name = name
    if timezone is not UNSET:
        user.timezone = timezone
    if email is not UNSET:
        try:
            with session.begin_nested():
                user.email = email.strip()
                session.flush()
        except IntegrityError:
            raise Conflict(f"a user with email {email.strip()} already exists",
                           fields={"email": "already in use"}) from None
    ensure_login_admin(session)
    after = snapshot(user, *USER_AUDIT_FIELDS)
    changed = {name for name in after if after[name] != before[name]}
    action = {frozenset({"role"}): "user.role_changed"}.get(frozenset(changed), "user.updated")
    if changed == {"password_hash"}:
        action = _password_action(before["password_hash"], after["password_hash"])
    record_audit(session, action=action, object_type="user", object_id=user.id, before=before, after=after)
    return user


# --- contact methods ------------------------------------------------------------------

def _contact_problem(channel, destination) -> dict:
    problem = validate_contact(channel, destination)
    if not problem:
        return {}
    return {"channel" if problem.startswith("channel must") else "destination": problem}


def _contact_audit(method: ContactMethod, *extra: str) -> dict:
    """The audit snapshot of a contact method; a webhook URL's secret path is masked."""
    values = snapshot(method, *extra, *CONTACT_AUDIT_FIELDS)
    if method.channel == "webhook":
        values["destination"] = mask_destination(method.destination)
    return values


def _save_contact(session: Session, method: ContactMethod) -> ContactMethod:
    # The unique key on (user, channel, destination) decides duplicates.
    shown = mask_destination(method.destination) if method.channel == "webhook" else method.destination
    with unique_or_conflict(session, f"this user already has {method.channel} contact {shown}",
                            fields={"destination": "this user already has that contact method"}):
        session.add(method)
    return method


def get_contact_method(session: Session, user: User, method_id: int) -> ContactMethod:
    """`user`'s contact method `method_id`, or NotFound."""
    return get_or_not_found(session, ContactMethod, method_id,
                            f"contact method {method_id} not found for user {user.id}",
                            lambda row: row.user_id == user.id)


def add_contact_method(session: Session, user: User, *, channel: str, destination: str,
                       enabled: bool = True, webhook_format: str | None = None) -> ContactMethod:
    """Add a way to reach `user`: sms/whatsapp to an E.164 number, email, or a chat webhook URL
    (`webhook_format` "slack" — the default — or "json")."""
    from pagerpal_core.services.webhooks import webhook_format_problem

    errors = _contact_problem(channel, destination)
    if webhook_format_problem(webhook_format):
        errors["webhook_format"] = webhook_format_problem(webhook_format)
    elif webhook_format and channel != "webhook":
        errors["webhook_format"] = "only for channel webhook"
    raise_if(errors, "invalid contact method")
    method = _save_contact(session, ContactMethod(user_id=user.id, channel=channel,
                                                  destination=destination.strip(), enabled=bool(enabled),
                                                  webhook_format=webhook_format or None))
    record_audit(session, action="contact_method.created", object_type="contact_method", object_id=method.id,
                 after=_contact_audit(method))
    return method


def update_contact_method(session: Session, method: ContactMethod, *, channel=UNSET, destination=UNSET,
                          enabled=UNSET, webhook_format=UNSET) -> ContactMethod:
    """Change a contact method's channel, destination, on/off switch or webhook body format."""
    from pagerpal_core.services.webhooks import webhook_format_problem

    channel = method.channel if channel is UNSET else channel
    destination = method.destination if destination is UNSET else destination
    errors = _contact_problem(channel, destination)
    if webhook_format is not UNSET and webhook_format_problem(webhook_format):
        errors["webhook_format"] = webhook_format_problem(webhook_format)
    raise_if(errors, "invalid contact method")
    before = _contact_audit(method)
    if webhook_format is not UNSET:
        method.webhook_format = webhook_format or None
    method.channel, method.destination = channel, destination.strip()
    if enabled is not UNSET:
        method.enabled = bool(enabled)
    _save_contact(session, method)
    record_audit(session, action="contact_method.updated", object_type="contact_method", object_id=method.id,
                 before=before, after=_contact_audit(method))
    return method


def remove_contact_method(session: Session, method: ContactMethod) -> None:
    """Delete a contact method; notifications already written keep their destination."""
    before = _contact_audit(method, "id")
    session.delete(method)
    session.flush()
    record_audit(session, action="contact_method.deleted", object_type="contact_method", object_id=before["id"],
                 before=before)


# --- who may be named as acting, and what no one may do to their own account ----------

# Roles that may be recorded as the actor of an incident action ("acting as").
ACTOR_ROLES = ("admin", "responder")


def resolve_acting_user(session: Session, caller: User, acting_as_id=None) -> User:
    """The user an incident action is recorded for: `acting_as_id`, or the caller when None.

    The one rule for the UI's "Acting as" and the API's `acting_as`: only an active
    responder or admin may be named (a responder identity without a login included), never
    a viewer or an inactive account; the caller must be an active responder or admin too.
    Raises NotFound or Forbidden, with the problem under `fields["acting_as"]`.
    """
    if caller is None or not caller.active or caller.role not in ACTOR_ROLES:
        raise Forbidden("only an active responder or admin can act on incidents")
    if acting_as_id is None:
        return caller
    valid_id = isinstance(acting_as_id, int) and not isinstance(acting_as_id, bool) and 0 < acting_as_id <= MAX_ROW_ID
    user = session.get(User, acting_as_id) if valid_id else None
    if user is None:
        raise NotFound(f"user {acting_as_id} not found", fields={"acting_as": f"user {acting_as_id} not found"})
    if not user.active:
        problem = f"user {user.name} is inactive; only active responders and admins can be named"
        raise Forbidden(problem, fields={"acting_as": problem})
    if user.role not in ACTOR_ROLES:
        problem = f"{user.name} is a {user.role}; only active responders and admins can be named"
        raise Forbidden(problem, fields={"acting_as": problem})
    return user


def refuse_self_lockout(actor: User | None, user: User, *, role=UNSET, deactivate: bool = False) -> None:
    """Refuse (Forbidden) an admin taking the admin role from themselves or deactivating their own account.

    Another admin must do it, so nobody locks themselves out by mistake; the UI and the API
    both call this before the change. `actor` None (the CLI) is not restricted.
    """
    if actor is None or actor.id != user.id:
        return
    if deactivate:
        problem = "you cannot deactivate your own account; ask another admin"
        raise Forbidden(problem, fields={"active": problem})
    if role is not UNSET and role != user.role and user.role == "admin":
        problem = "you cannot take the admin role from yourself; ask another admin"
        raise Forbidden(problem, fields={"role": problem})
