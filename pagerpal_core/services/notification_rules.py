"""Personal notification rules: which of a user's contact methods is paged, and how long after.

A user's rules are an ordered list of `(contact method, delay minutes)`, e.g. SMS at 0,
WhatsApp at 2, email at 5 (PagerDuty's and GoAlert's model). Paging the user writes one
outbox row per rule, due at `paged_at + delay`; acknowledging, snoozing or resolving the
incident cancels the rows still pending. The same order is the order failover walks.

A user without rules (or whose rules only name disabled methods) is paged on every enabled
contact method at once — what PagerPal did before rules existed, so nothing changes for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pagerpal_core.errors import Forbidden, Invalid
from pagerpal_core.models import ContactMethod, NotificationRule, User
from pagerpal_core.models.notifications import MAX_RULE_DELAY_MINUTES
from pagerpal_core.services.audit import record_audit

MAX_RULES = 20


@dataclass(frozen=True)
class EffectiveRule:
    """One contact method to page and its delay; `default` when the user has no rules of their own."""

    contact_method: ContactMethod
    delay_minutes: int
    default: bool = False


def can_edit_rules(actor: User | None, user: User) -> bool:
    """Admins edit anyone's rules; everyone else only their own."""
    return actor is not None and (actor.role == "admin" or actor.id == user.id)


def list_notification_rules(session: Session, user: User) -> list[NotificationRule]:
    """The user's own rules in order (empty: the default applies)."""
    return list(session.scalars(select(NotificationRule).where(NotificationRule.user_id == user.id)
                                .order_by(NotificationRule.position, NotificationRule.id)))


def effective_rules(session: Session, user: User) -> list[EffectiveRule]:
    """What paging `user` does: their rules on enabled methods, else every enabled method at 0."""
    methods = list(session.scalars(select(ContactMethod).where(
        ContactMethod.user_id == user.id, ContactMethod.enabled.is_(True)).order_by(ContactMethod.id)))
    enabled = {m.id: m for m in methods}
    rules = [EffectiveRule(enabled[r.contact_method_id], r.delay_minutes)
             for r in list_notification_rules(session, user) if r.contact_method_id in enabled]
    if rules:
        return rules
    return [EffectiveRule(m, 0, default=True) for m in methods]


def failover_order(session: Session, user: User) -> list[ContactMethod]:
    """The user's enabled contact methods in failover order: their rules first, then the rest."""
    ordered = [r.contact_method for r in effective_rules(session, user)]
    seen = {m.id for m in ordered}
    rest = session.scalars(select(ContactMethod).where(
        ContactMethod.user_id == user.id, ContactMethod.enabled.is_(True)).order_by(ContactMethod.id))
    return ordered + [m for m in rest if m.id not in seen]


def _parse_rules(session: Session, user: User, rules) -> list[tuple[int, int]]:
    """Validate the body's rules; Invalid naming every bad field (`rules[i].field`)."""
    if not isinstance(rules, list):
        raise Invalid("rules must be a list", fields={"rules": "must be a list of {contact_method_id, delay_minutes}"})
    if len(rules) > MAX_RULES:
        raise Invalid(f"at most {MAX_RULES} rules", fields={"rules": f"at most {MAX_RULES} rules"})
    owned = set(session.scalars(select(ContactMethod.id).where(ContactMethod.user_id == user.id)))
    problems: dict[str, str] = {}
    parsed: list[tuple[int, int]] = []
    seen: set[int] = set()
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        if not isinstance(rule, dict):
            problems[where] = "must be an object with contact_method_id and delay_minutes"
            continue
        method_id, delay = rule.get("contact_method_id"), rule.get("delay_minutes", 0)
        if isinstance(method_id, bool) or not isinstance(method_id, int):
            problems[f"{where}.contact_method_id"] = "must be the id of one of this user's contact methods"
        elif method_id not in owned:
            problems[f"{where}.contact_method_id"] = "no such contact method for this user"
        elif method_id in seen:
            problems[f"{where}.contact_method_id"] = "each contact method may appear in one rule only"
        if isinstance(delay, bool) or not isinstance(delay, int):
            problems[f"{where}.delay_minutes"] = "must be a whole number of minutes"
        elif not 0 <= delay <= MAX_RULE_DELAY_MINUTES:
            problems[f"{where}.delay_minutes"] = f"must be between 0 and {MAX_RULE_DELAY_MINUTES} minutes"
        if isinstance(method_id, int) and not isinstance(method_id, bool):
            seen.add(method_id)
        if f"{where}.contact_method_id" not in problems and f"{where}.delay_minutes" not in problems:
            parsed.append((method_id, delay))
    if problems:
        raise Invalid("invalid notification rules: " + "; ".join(f"{k} {v}" for k, v in problems.items()),
                      fields=problems)
    return parsed


def set_notification_rules(session: Session, user: User, rules, *, actor: User | None,
                           now: datetime) -> list[NotificationRule]:
    """Replace `user`'s rules with `rules` ([{contact_method_id, delay_minutes}, ...], in order).

    An empty list returns the user to the default (every enabled method at once). Raises
    Forbidden unless `actor` is an admin or the user, Invalid (nothing written) on bad rules.
    Flushes; the caller commits.
    """
    if not can_edit_rules(actor, user):
        raise Forbidden("only an admin or the user themselves can change notification rules")
    parsed = _parse_rules(session, user, rules)
    before = [{"contact_method_id": r.contact_method_id, "delay_minutes": r.delay_minutes}
              for r in list_notification_rules(session, user)]
    session.execute(delete(NotificationRule).where(NotificationRule.user_id == user.id)
                    .execution_options(synchronize_session=False))
    rows = [NotificationRule(user_id=user.id, contact_method_id=method_id, position=position,
                             delay_minutes=delay, created_at=now)
            for position, (method_id, delay) in enumerate(parsed)]
    session.add_all(rows)
    session.flush()
    record_audit(session, action="user.notification_rules_set", object_type="user", object_id=user.id,
                 before={"notification_rules": before},
                 after={"notification_rules": [{"contact_method_id": m, "delay_minutes": d} for m, d in parsed]})
    return rows


def rules_as_dicts(session: Session, user: User) -> dict:
    """The API shape: the stored rules, and what paging does now (`effective`)."""
    own = list_notification_rules(session, user)
    return {
        "user_id": user.id,
        "default": not own,
        "rules": [{"contact_method_id": r.contact_method_id, "delay_minutes": r.delay_minutes} for r in own],
        "effective": [{"contact_method_id": r.contact_method.id, "channel": r.contact_method.channel,
                       "delay_minutes": r.delay_minutes} for r in effective_rules(session, user)],
    }
