"""Alert sources: one per monitoring integration, each with its own secret key.

A key is `ppk_` + 32 random bytes (URL-safe base64). Only its SHA-256 and a four-character
display suffix are stored, so the full key exists exactly twice: in the response to
create and to regenerate. Regenerating replaces the hash, so the old key stops working
with the commit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from pagerpal_core.db import Keyset, get_or_not_found, unique_or_conflict
from pagerpal_core.errors import Conflict, Invalid, NotFound
from pagerpal_core.models import AlertSource, EscalationPolicy, Incident, Team
from pagerpal_core.models.alert_sources import SNS_VERIFICATION_MODES, SOURCE_KINDS
from pagerpal_core.models.incidents import OPEN_STATUSES, SEVERITIES
from pagerpal_core.security import sha256_hex
from pagerpal_core.services.audit import audit_suppressed, record_audit
from pagerpal_core.services.validation import text_problem

KEY_PREFIX = "ppk_"
KEY_BYTES = 32
SUFFIX_LENGTH = 4
MAX_NAME = 120
MAX_SEVERITY_MAP_ENTRIES = 50
DEFAULT_SEVERITY = "high"
# The severity-map key that sets the severity for words the map does not name (and for
# senders that send none, such as CloudWatch).
DEFAULT_KEY = "*"

# Common words monitoring tools use, mapped once here; a source's own map wins.
BUILTIN_SEVERITIES = {
    "critical": "critical", "crit": "critical", "fatal": "critical", "emergency": "critical",
    "page": "critical", "disaster": "critical", "p1": "critical", "sev1": "critical",
    "high": "high", "error": "high", "err": "high", "major": "high", "p2": "high", "sev2": "high",
    "warning": "warning", "warn": "warning", "minor": "warning", "average": "warning",
    "medium": "warning", "p3": "warning", "sev3": "warning",
    "info": "info", "informational": "info", "information": "info", "low": "info", "notice": "info",
    "debug": "info", "p4": "info", "p5": "info", "none": "info",
}


@dataclass
class IssuedKey:
    """A source together with its full key, returned only by create and regenerate."""

    source: AlertSource
    key: str


def new_source_key() -> str:
    """A fresh key: the prefix plus 32 random bytes, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def hash_key(key: str) -> str:
    """The stored form of a source key (its SHA-256 hex)."""
    return sha256_hex(key)


def mask_key(suffix: str) -> str:
    """How a stored key is shown: prefix, ellipsis, last four characters."""
    return f"{KEY_PREFIX}…{suffix}"


def _mark_changed(source: AlertSource, now: datetime) -> None:
    # Web processes cache sources for a moment (services/source_cache.py); the new version
    # makes every cached copy fail its check on the next alert, so the change takes effect
    # at once. An SQL increment, so two concurrent edits both count.
    source.updated_at = now
    if source.id is not None:
        source.config_version = AlertSource.config_version + 1


def _apply_key(source: AlertSource, key: str) -> None:
    source.key_hash = hash_key(key)
    source.key_suffix = key[-SUFFIX_LENGTH:]


def _validate(session: Session, *, name=None, kind=None, policy_id=None, team_id=None,
              severity_map=None, sns_verification=None, check=()) -> dict:
    errors = {}
    if "name" in check:
        if not isinstance(name, str) or not name.strip():
            errors["name"] = "is required"
        elif len(name.strip()) > MAX_NAME:
            errors["name"] = f"must be at most {MAX_NAME} characters"
        elif text_problem(name):
            errors["name"] = text_problem(name)
    if "kind" in check and kind not in SOURCE_KINDS:
        errors["kind"] = f"must be one of {', '.join(SOURCE_KINDS)}"
    if "policy_id" in check and policy_id is not None:
        if not isinstance(policy_id, int) or isinstance(policy_id, bool) \
                or session.get(EscalationPolicy, policy_id) is None:
            errors["policy_id"] = "no such escalation policy"
    if "team_id" in check and team_id is not None:
        if not isinstance(team_id, int) or isinstance(team_id, bool) or session.get(Team, team_id) is None:
            errors["team_id"] = "no such team"
    if "severity_map" in check and severity_map is not None:
        problem = severity_map_problem(severity_map)
        if problem:
            errors["severity_map"] = problem
    if "sns_verification" in check and sns_verification not in SNS_VERIFICATION_MODES:
        errors["sns_verification"] = f"must be one of {', '.join(SNS_VERIFICATION_MODES)}"
    return errors


def severity_map_problem(severity_map) -> str | None:
    """Why `severity_map` is unusable, or None."""
    if not isinstance(severity_map, dict):
        return "must be an object mapping source severities to PagerPal severities"
    if len(severity_map) > MAX_SEVERITY_MAP_ENTRIES:
        return f"at most {MAX_SEVERITY_MAP_ENTRIES} entries"
    for word, target in severity_map.items():
        if not isinstance(word, str) or not word.strip() or len(word) > 64:
            return "keys must be non-empty strings of at most 64 characters"
        if target not in SEVERITIES:
            return f"{word!r} maps to {target!r}; values must be one of {', '.join(SEVERITIES)}"
    return None


def normalise_severity_map(severity_map: dict | None) -> dict:
    """The map with its words trimmed and lower-cased, as matching compares them."""
    return {word.strip().lower(): target for word, target in (severity_map or {}).items()}


def map_severity(source: AlertSource, raw: str | None) -> str:
    """PagerPal's severity for the sender's word `raw`: the source's map, then the built-in
    words, then the source's `*` default, then `high`."""
    mapping = source.severity_map or {}
    word = raw.strip().lower() if isinstance(raw, str) else ""
    if word and word in mapping:
        return mapping[word]
    if word in BUILTIN_SEVERITIES:
        return BUILTIN_SEVERITIES[word]
    return mapping.get(DEFAULT_KEY, DEFAULT_SEVERITY)


def get_alert_source(session: Session, source_id: int) -> AlertSource:
    """The source with `source_id`, or NotFound."""
    return get_or_not_found(session, AlertSource, source_id, f"alert source {source_id} not found")


def find_alert_source_by_name(session: Session, name: str) -> AlertSource:
    """The source called `name` (case-insensitive), or NotFound."""
    source = session.scalar(select(AlertSource).where(
        func.lower(AlertSource.name) == (name or "").strip().lower()))
    if source is None:
        raise NotFound(f"alert source {name!r} not found")
    return source


def list_alert_sources(session: Session, *, policy: EscalationPolicy | None = None,
                       page: Keyset | None = None) -> list[AlertSource]:
    """Every source (or those routed to `policy`), by name (by id for a keyset `page`)."""
    query = select(AlertSource)
    if policy is not None:
        query = query.where(AlertSource.policy_id == policy.id)
    if page is not None:
        return list(session.scalars(page.apply(query, AlertSource.id)))
    return list(session.scalars(query.order_by(AlertSource.name)))


def count_open_incidents(session: Session, source: AlertSource) -> int:
    """How many of the source's incidents are open (triggered or acknowledged)."""
    return session.scalar(select(func.count(Incident.id)).where(
        Incident.alert_source_id == source.id, Incident.status.in_(OPEN_STATUSES))) or 0


def _source_audit(source: AlertSource) -> dict:
    """What the audit log shows of a source (`key_hash` only to tell that the key changed: it is masked)."""
    values = {name: getattr(source, name, None) for name in
              ("name", "kind", "policy_id", "team_id", "severity_map", "active", "sns_verification", "key_hash")}
    values["severity_map"] = dict(values["severity_map"] or {})
    return values


def create_alert_source(session: Session, *, name: str, kind: str = "generic", policy_id: int | None = None,
                        team_id: int | None = None, severity_map: dict | None = None,
                        active: bool = True, sns_verification: str = "verify", now: datetime) -> IssuedKey:
    """Create a source; the returned IssuedKey holds the full key, which is never readable again.

    `sns_verification` ("verify", the default, or "key-only") says whether SNS messages to the
    CloudWatch endpoint must also carry a valid SNS signature (services/sns_signatures.py).
    """
    errors = _validate(session, name=name, kind=kind, policy_id=policy_id, team_id=team_id,
                       severity_map=severity_map, sns_verification=sns_verification,
                       check=("name", "kind", "policy_id", "team_id", "severity_map", "sns_verification"))
    if errors:
        raise Invalid("invalid alert source", fields=errors)
    key = new_source_key()
    source = AlertSource(name=name.strip(), kind=kind, policy_id=policy_id, team_id=team_id,
                         severity_map=normalise_severity_map(severity_map), active=bool(active),
                         sns_verification=sns_verification, key_rotated_at=now, created_at=now, updated_at=now)
    _apply_key(source, key)
    with unique_or_conflict(session, f"an alert source named {name.strip()!r} already exists",
                            fields={"name": "already in use"}):
        session.add(source)
    record_audit(session, action="alert_source.created", object_type="alert_source", object_id=source.id,
                 after=_source_audit(source))
    return IssuedKey(source=source, key=key)


def rename_alert_source(session: Session, source: AlertSource, name: str, *, now: datetime) -> AlertSource:
    """Give `source` a new unique name."""
    errors = _validate(session, name=name, check=("name",))
    if errors:
        raise Invalid("invalid alert source", fields=errors)
    # Rolling the savepoint back expires `source`, so after a conflict it reads its old name again.
    before = {"name": source.name}
    with unique_or_conflict(session, f"an alert source named {name.strip()!r} already exists",
                            fields={"name": "already in use"}):
        source.name = name.strip()
        _mark_changed(source, now)
    record_audit(session, action="alert_source.renamed", object_type="alert_source", object_id=source.id,
                 before=before, after={"name": source.name})
    return source


def update_alert_source(session: Session, source: AlertSource, *, now: datetime, **changes) -> AlertSource:
    """Change routing and mapping: any of kind, policy_id, team_id, severity_map, name, active,
    sns_verification."""
    allowed = {"kind", "policy_id", "team_id", "severity_map", "name", "active", "sns_verification"}
    unknown = set(changes) - allowed
    if unknown:
        raise Invalid("invalid alert source", fields={k: "cannot be changed" for k in sorted(unknown)})
    errors = _validate(session, check=tuple(k for k in changes if k not in ("name", "active")),
                       **{k: v for k, v in changes.items() if k not in ("name", "active")})
    if "active" in changes and not isinstance(changes["active"], bool):
        errors["active"] = "must be true or false"
    if errors:
        raise Invalid("invalid alert source", fields=errors)
    before = _source_audit(source)
    if "name" in changes:
        with audit_suppressed(session):  # one row below covers the rename too
            rename_alert_source(session, source, changes.pop("name"), now=now)
    if "severity_map" in changes:
        changes["severity_map"] = normalise_severity_map(changes["severity_map"])
    for attr, value in changes.items():
        setattr(source, attr, value)
    _mark_changed(source, now)
    session.flush()
    record_audit(session, action="alert_source.updated", object_type="alert_source", object_id=source.id,
                 before=before, after=_source_audit(source))
    return source


def set_alert_source_active(session: Session, source: AlertSource, active: bool, *,
                            now: datetime) -> AlertSource:
    """Activate or deactivate: an inactive source's key is refused with 403."""
    before = {"active": source.active}
    source.active = bool(active)
    _mark_changed(source, now)
    session.flush()
    record_audit(session, action="alert_source.activated" if active else "alert_source.deactivated",
                 object_type="alert_source", object_id=source.id, before=before, after={"active": source.active})
    return source


def activate_alert_source(session: Session, source: AlertSource, *, now: datetime) -> AlertSource:
    """Accept alerts from `source` again."""
    return set_alert_source_active(session, source, True, now=now)


def deactivate_alert_source(session: Session, source: AlertSource, *, now: datetime) -> AlertSource:
    """Refuse alerts from `source` (403) without forgetting its incidents or key."""
    return set_alert_source_active(session, source, False, now=now)


def regenerate_alert_source_key(session: Session, source: AlertSource, *, now: datetime) -> IssuedKey:
    """Replace the key; the old one stops working when the caller commits."""
    key = new_source_key()
    before = {"key_hash": source.key_hash, "key_rotated_at": source.key_rotated_at}
    _apply_key(source, key)
    source.key_rotated_at = now
    _mark_changed(source, now)
    session.flush()
    record_audit(session, action="alert_source.key_regenerated", object_type="alert_source", object_id=source.id,
                 before=before, after={"key_hash": source.key_hash, "key_rotated_at": source.key_rotated_at})
    return IssuedKey(source=source, key=key)


def delete_alert_source(session: Session, source: AlertSource) -> None:
    """Delete a source that never opened an incident; one that did must be deactivated instead.

    One DELETE guarded by NOT EXISTS, so the check and the delete are one statement.
    """
    before = {"id": source.id, **_source_audit(source)}
    result = session.execute(
        delete(AlertSource)
        .where(AlertSource.id == source.id)
        .where(~exists().where(Incident.alert_source_id == source.id))
        .execution_options(synchronize_session=False))
    if result.rowcount == 0:
        if session.get(AlertSource, source.id, populate_existing=True) is None:
            raise NotFound(f"alert source {source.id} not found")
        raise Conflict(f"alert source {source.name!r} has incidents; deactivate it instead of deleting")
    session.expunge(source)
    record_audit(session, action="alert_source.deleted", object_type="alert_source", object_id=before["id"],
                 before=before)


def authenticate_source(session: Session, key: str | None) -> AlertSource | None:
    """The source whose key is `key`, active or not, or None.

    The lookup is by SHA-256 of the presented key on a unique index: no key is compared
    character by character, so response time says nothing about how close a guess was.
    The caller answers 401 for None and 403 for an inactive source.
    """
    if not isinstance(key, str) or not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    return session.scalar(select(AlertSource).where(AlertSource.key_hash == hash_key(key)))
