"""The audit log: `record_audit` writes one row per configuration change or sign-in event.

Every service that changes configuration (users, contact methods, teams, schedules,
policies, alert sources, heartbeat monitors, ...) calls `record_audit` once, in the same
transaction as the change — zulip's `do_*` actions and their RealmAuditLog rows are the
model — so a change and its audit row are committed together or not at all.

Who and where come from the caller's `AuditContext`, a plain value the web sets for each
request (`pagerpal_web.audit_context`) and the CLI for each command; core never imports
Flask. The acting user defaults to the authenticated caller the web already names on the
session for the timeline (`timeline.record_as_caller`). Without any context (the worker,
a test calling a service directly) the actor is "system".

Secrets never reach a row: values under secret-looking field names (passwords, hashes,
keys, tokens) are replaced by a marker before the row is written; only whether one was
set, changed or removed stays visible.
"""

from __future__ import annotations

import contextvars
import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from pagerpal_core.errors import Invalid
from pagerpal_core.logs import request_id_var
from pagerpal_core.models import User
from pagerpal_core.models.audit import ACTOR_KINDS, AuditEvent
from pagerpal_core.services.timeline import RECORDED_BY_KEY
from pagerpal_core.timeutil import isoformat, utcnow

# What a masked secret reads as in a row. Whether one is set (a value) or not (None) stays visible.
MASK = "***"
# Field names (lower case) whose values are secrets, matched exactly or as a part of the name.
SECRET_NAMES = ("password", "secret", "token", "hash", "api_key", "apikey", "credential", "private")
SECRET_EXACT = ("key",)
MAX_LABEL = 200
MAX_VALUE_CHARS = 2000


@dataclass(frozen=True)
class AuditContext:
    """Where a change comes from: kind of actor, channel, request id and client address.

    A plain value: the web builds one per request, the CLI one per command. `actor_user_id`
    names the acting account when the context already knows it (the web leaves it to the
    session's caller, which it learns only when it authenticates the request).
    """

    actor_kind: str = "system"
    via: str | None = None
    request_id: str | None = None
    client_address: str | None = None
    actor_user_id: int | None = None
    actor_label: str | None = None


SYSTEM = AuditContext()
_context: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar("audit_context", default=None)


def current_audit_context() -> AuditContext:
    """The context set for this request or command, or SYSTEM."""
    return _context.get() or SYSTEM


def set_audit_context(context: AuditContext | None) -> contextvars.Token:
    """Make `context` current (until `reset_audit_context(token)`)."""
    if context is not None and context.actor_kind not in ACTOR_KINDS:
        raise ValueError(f"actor_kind must be one of {', '.join(ACTOR_KINDS)}")
    return _context.set(context)


def reset_audit_context(token: contextvars.Token) -> None:
    """Restore the context that was current before `set_audit_context` returned `token`."""
    _context.reset(token)


@contextmanager
def audit_context(context: AuditContext) -> Iterator[AuditContext]:
    """`with audit_context(AuditContext(...)):` — the context for a block (CLI commands, tests)."""
    token = set_audit_context(context)
    try:
        yield context
    finally:
        reset_audit_context(token)


def cli_context() -> AuditContext:
    """The context of a `flask pagerpal ...` command: the operating-system account that ran it."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        who = "unknown"
    return AuditContext(actor_kind="cli", via="cli", actor_label=f"cli ({who})"[:MAX_LABEL])


# --- values ------------------------------------------------------------------------------

def is_secret_name(name: str) -> bool:
    """True when a field called `name` holds a secret (its value is never written to the log)."""
    lowered = str(name).lower()
    return lowered in SECRET_EXACT or any(part in lowered for part in SECRET_NAMES)


def _plain(value):
    """`value` as JSON: times as ISO-8601, containers recursively, anything else as bounded text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)[:MAX_VALUE_CHARS]


def mask_secrets(values: dict | None) -> dict | None:
    """`values` with every secret-named field's value replaced by MASK (None stays None), recursively."""
    if values is None:
        return None
    masked = {}
    for name, value in values.items():
        if is_secret_name(name):
            masked[name] = None if value is None else MASK
        elif isinstance(value, dict):
            masked[name] = mask_secrets(value)
        elif isinstance(value, list):
            masked[name] = [mask_secrets(v) if isinstance(v, dict) else v for v in value]
        else:
            masked[name] = value
    return masked


def snapshot(obj, *fields: str) -> dict:
    """The named attributes of `obj` as a dict, for a service's `before=` / `after=`."""
    return {name: getattr(obj, name) for name in fields}


def changed_fields(before: dict | None, after: dict | None) -> tuple[dict | None, dict | None]:
    """Only the fields whose values differ, when both sides are given (a create or delete keeps all).

    Compared before masking, so a changed password is seen as changed although both sides
    read MASK.
    """
    if before is None or after is None:
        return before, after
    names = [n for n in dict.fromkeys([*before, *after]) if before.get(n) != after.get(n)]
    return {n: before.get(n) for n in names}, {n: after.get(n) for n in names}


# --- writing -----------------------------------------------------------------------------

_UNSET = object()
# Session.info keys: rows recorded in the current transaction, not yet added (see record_audit);
# and a depth counter while a composite service records its parts itself (see audit_suppressed).
PENDING_KEY = "pagerpal.audit_pending"
SUPPRESS_KEY = "pagerpal.audit_suppressed"


def _actor_user(session: Session, actor, context: AuditContext) -> User | None:
    if actor is _UNSET:
        actor = context.actor_user_id or session.info.get(RECORDED_BY_KEY)
    if isinstance(actor, User):
        return actor
    if isinstance(actor, int) and not isinstance(actor, bool):
        return session.get(User, actor)
    return None


def record_audit(session: Session, *, action: str, object_type: str, object_id=None, before: dict | None = None,
                 after: dict | None = None, actor=_UNSET, context: AuditContext | None = None,
                 now: datetime | None = None) -> AuditEvent | None:
    """Record one audit row, written by the commit of the caller's transaction (or not at all).

    `action` is "<noun>.<verb>" such as "user.role_changed"; `object_type`/`object_id` name
    what changed. `before`/`after` hold the changed fields (for an update only those that
    differ are kept); secret-named fields are masked. `actor` is a User, a user id, or None
    for nobody; by default the caller named for this session (see record_as_caller) or the
    context's user. `context` defaults to the current one (see set_audit_context).

    Rows wait in the session until it commits, and are added just before (a `before_commit`
    listener), so they share the change's transaction and vanish with its rollback. Two
    records for one object in one transaction — a request that renames a rotation and
    replaces its turn order through two services — become one row: the earlier action, each
    field's first `before` and last `after`. Returns the pending row (None while suppressed).
    """
    if session.info.get(SUPPRESS_KEY):
        return None
    context = context or current_audit_context()
    user = _actor_user(session, actor, context)
    kind = context.actor_kind
    if user is not None and kind == "system":
        kind = "user"  # a person named explicitly by a service run outside any request
    if user is not None:
        label = user.name or user.email
    else:  # nobody signed in: an anonymous visitor (a failed sign-in), the CLI, the worker
        label = context.actor_label or ("anonymous" if kind == "user" else kind)
    before, after = changed_fields(before, after)
    row = AuditEvent(
        created_at=now or utcnow(),
        actor_user_id=user.id if user is not None else None,
        actor_kind=kind,
        actor_label=str(label)[:MAX_LABEL],
        via=context.via,
        action=action[:64],
        object_type=object_type[:40],
        object_id=None if object_id is None else str(object_id)[:64],
        before=mask_secrets(_plain(before)),
        after=mask_secrets(_plain(after)),
        request_id=(context.request_id or request_id_var.get() or "")[:100] or None,
        client_address=(context.client_address or "")[:100] or None,
    )
    pending: dict = session.info.setdefault(PENDING_KEY, {})
    key = (row.object_type, row.object_id)
    earlier = pending.get(key)
    if earlier is None or row.object_id is None or action.startswith("auth."):
        pending[key if row.object_id is not None and not action.startswith("auth.") else id(row)] = row
        return row
    if row.before is not None:
        earlier.before = {**row.before, **(earlier.before or {})}
    if row.after is not None:
        earlier.after = {**(earlier.after or {}), **row.after}
    return earlier


@contextmanager
def audit_suppressed(session: Session) -> Iterator[None]:
    """Inside, `record_audit` records nothing: for a service whose own row already covers its parts.

    E.g. creating a policy with its levels writes one "policy.created" row naming the
    levels, not one more row per level.
    """
    session.info[SUPPRESS_KEY] = session.info.get(SUPPRESS_KEY, 0) + 1
    try:
        yield
    finally:
        session.info[SUPPRESS_KEY] = session.info.get(SUPPRESS_KEY, 1) - 1


def pending_audit_events(session: Session) -> list[AuditEvent]:
    """The rows recorded in this transaction and not yet written (in recording order)."""
    return list(session.info.get(PENDING_KEY, {}).values())


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    """Add the transaction's audit rows just before it commits (the commit's final flush writes them)."""
    if session.in_nested_transaction():
        return  # a savepoint's release (SQLAlchemy calls this hook for it too): wait for the real commit
    rows = session.info.pop(PENDING_KEY, None)
    if rows:
        session.add_all(rows.values())


@event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction) -> None:
    """A transaction that ended without committing (rolled back) takes its recorded rows with it."""
    if transaction.parent is None:
        session.info.pop(PENDING_KEY, None)


def with_actor(context: AuditContext, user: User | None) -> AuditContext:
    """`context` naming `user` as the acting account."""
    return replace(context, actor_user_id=user.id if user is not None else None)


# --- reading (admins only: the web checks the role) ----------------------------------------

@dataclass(frozen=True)
class AuditFilter:
    """What the audit page, the API and the export narrow by; None means any."""

    actor_user_id: int | None = None
    actor_kind: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before

    def check(self) -> AuditFilter:
        """Raise Invalid for values no row can match in a meaningful way; returns self."""
        errors = {}
        if self.actor_kind is not None and self.actor_kind not in ACTOR_KINDS:
            errors["actor_kind"] = f"must be one of {', '.join(ACTOR_KINDS)}"
        for name in ("action", "object_type", "object_id"):
            value = getattr(self, name)
            if value is not None and (len(value) > 64 or "\x00" in value):
                errors[name] = "must be at most 64 characters"
        if self.since is not None and self.until is not None and self.until < self.since:
            errors["until"] = "must not be before since"
        if errors:
            raise Invalid("invalid audit filter", fields=errors)
        return self

    def apply(self, query):
        """`query` (over AuditEvent) narrowed by every given filter."""
        if self.actor_user_id is not None:
            query = query.where(AuditEvent.actor_user_id == self.actor_user_id)
        if self.actor_kind is not None:
            query = query.where(AuditEvent.actor_kind == self.actor_kind)
        if self.action is not None:
            query = query.where(AuditEvent.action == self.action)
        if self.object_type is not None:
            query = query.where(AuditEvent.object_type == self.object_type)
        if self.object_id is not None:
            query = query.where(AuditEvent.object_id == self.object_id)
        if self.since is not None:
            query = query.where(AuditEvent.created_at >= self.since)
        if self.until is not None:
            query = query.where(AuditEvent.created_at < self.until)
        return query


def list_audit_events(session: Session, *, filters: AuditFilter | None = None, limit: int = 50,
                      after: int | None = None, before: int | None = None,
                      newest_first: bool = False) -> list[AuditEvent]:
    """At most `limit` rows matching `filters`, keyset-paged by id.

    Oldest first with `after` (the API's and the export's order, stable while rows arrive),
    or newest first with `before` (the admin page).
    """
    query = (filters or AuditFilter()).check().apply(select(AuditEvent))
    if after is not None:
        query = query.where(AuditEvent.id > after)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    query = query.order_by(AuditEvent.id.desc() if newest_first else AuditEvent.id)
    return list(session.scalars(query.limit(limit)))


def iter_audit_events(session: Session, *, filters: AuditFilter | None = None,
                      batch: int = 500) -> Iterator[AuditEvent]:
    """Every matching row, oldest first, read in batches (for the JSON-lines export)."""
    after = None
    while True:
        rows = list_audit_events(session, filters=filters, limit=batch, after=after)
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].id


def audit_event_as_dict(event: AuditEvent) -> dict:
    """One row as the API, the export and the page show it."""
    return {
        "id": event.id, "created_at": isoformat(event.created_at), "actor_user_id": event.actor_user_id,
        "actor_kind": event.actor_kind, "actor_label": event.actor_label, "via": event.via,
        "action": event.action, "object_type": event.object_type, "object_id": event.object_id,
        "before": event.before, "after": event.after, "request_id": event.request_id,
        "client_address": event.client_address,
    }


# --- retention -------------------------------------------------------------------------------

def purge_old_audit_events(session: Session, *, now: datetime, retention_days: int, batch: int = 5000) -> int:
    """Delete at most `batch` rows older than `retention_days`; returns how many. Flushes.

    The only deletion of audit rows anywhere (the worker's chores step calls it). In
    batches by id, so a first run over a large backlog holds its locks only briefly.
    """
    if retention_days <= 0:
        return 0
    cutoff = now - timedelta(days=retention_days)
    ids = select(AuditEvent.id).where(AuditEvent.created_at < cutoff).order_by(AuditEvent.id).limit(batch)
    result = session.execute(delete(AuditEvent).where(AuditEvent.id.in_(ids))
                             .execution_options(synchronize_session=False))
    return result.rowcount or 0
