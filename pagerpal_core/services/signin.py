"""Password sign-in with throttling: one rule for the /login form and the API's Basic auth.

Failed passwords are counted in two places, both shared by every web process through the
`auth_throttle` table:

- per (client address, account): after `max_failures` failures that address must wait
  `block_seconds` before its next try *for that account*, doubling with each further
  failure (at most a day). Other accounts signing in from the same address — everyone
  behind one proxy — are not affected.
- per account, from all addresses together: after `account_max_failures` failures every
  address must wait in the same way, which stops a guessing attack spread over many
  addresses. An address that signed in to the account successfully within the last 30
  days is exempt, so the owner is not locked out by someone else's attack.

A success clears only its own (address, account) counter. Unknown emails are counted the
same way as real ones, so the answers do not reveal which accounts exist.

Every try is *reserved* before its password is checked: both rows are locked, checked and
counted as a failure, and that is committed first. N parallel guesses therefore see each
other's reservations and at most the allowed number reach the password check; a correct
password then takes its own reservation back. This is why `sign_in` commits, unlike most
services: the reservation must be visible to concurrent requests before the slow hash runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pagerpal_core.errors import RateLimited, Unauthorized
from pagerpal_core.models import AuthThrottle, User
from pagerpal_core.services.audit import record_audit
from pagerpal_core.services.users import authenticate, find_user_by_email, normalize_email
from pagerpal_core.timeutil import utcnow

# Failures older than this, with no block running, are forgotten.
FORGET_AFTER = timedelta(hours=24)
# An (address, account) pair with a success this recent is exempt from the account-wide counter.
KNOWN_PAIR_FOR = timedelta(days=30)
# The longest single wait, however many failures there were.
MAX_BLOCK_SECONDS = 86_400
MAX_ADDRESS_LENGTH = 100


@dataclass(frozen=True)
class SigninPolicy:
    """The throttle's numbers (LOGIN_MAX_FAILURES, LOGIN_BLOCK_SECONDS, LOGIN_ACCOUNT_MAX_FAILURES)."""

    max_failures: int = 5
    block_seconds: int = 300
    account_max_failures: int = 20

    @classmethod
    def from_settings(cls, settings) -> SigninPolicy:
        """The policy configured in `settings`."""
        return cls(max_failures=settings.login_max_failures, block_seconds=settings.login_block_seconds,
                   account_max_failures=settings.login_account_max_failures)


@dataclass
class Attempt:
    """A reserved try: which rows it counted on, and what it changed on the account row."""

    pair_key: str
    account_key: str | None  # None when the pair is known and the account counter was skipped
    account_before: tuple[datetime | None, datetime | None] = (None, None)  # (blocked_until, last_failure_at)
    account_after: tuple[datetime | None, datetime | None] = (None, None)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def throttle_keys(address: str | None, email: str | None) -> tuple[str, str]:
    """(pair key, account key) for a try at `email` from `address`.

    Hashed, so a submitted "email" of any length or content becomes a fixed-size key and
    mistyped or guessed addresses are not stored in the clear.
    """
    account = normalize_email(email)
    address = (address or "unknown")[:MAX_ADDRESS_LENGTH]
    return f"pair:{_digest(address, account)}", f"account:{_digest(account)}"


def block_seconds_after(failures: int, limit: int, policy: SigninPolicy) -> int:
    """How long to wait after `failures` failures on a counter whose free tries are `limit`."""
    if failures < limit:
        return 0
    cap = max(MAX_BLOCK_SECONDS, policy.block_seconds)
    return min(policy.block_seconds * 2 ** min(failures - limit, 32), cap)


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, int((moment - now).total_seconds() + 0.999))


def _locked_rows(session: Session, keys: list[str], now: datetime) -> dict[str, AuthThrottle]:
    """The counter rows for `keys`, created when missing and locked until the transaction ends."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # ON CONFLICT DO NOTHING: two first tries for one key at the same moment both succeed here
    # (the second waits for the first's row), and neither aborts the transaction.
    keys = sorted(keys)
    session.execute(insert(AuthThrottle).values(
        [{"key": key, "failures": 0, "window_started_at": now} for key in keys]).on_conflict_do_nothing())
    # Inserted and locked in key order ("account:" < "pair:") in every transaction, so two tries
    # never wait for each other in a cycle.
    # (SQLite has no row locks; its BEGIN IMMEDIATE already serialises the whole transaction.)
    rows = session.scalars(select(AuthThrottle).where(AuthThrottle.key.in_(keys)).order_by(AuthThrottle.key)
                           .with_for_update().execution_options(populate_existing=True))
    return {row.key: row for row in rows}


def _forget_stale(row: AuthThrottle, now: datetime) -> None:
    blocked = row.blocked_until is not None and row.blocked_until > now
    if row.failures and not blocked and (row.last_failure_at is None or row.last_failure_at + FORGET_AFTER <= now):
        row.failures, row.blocked_until = 0, None


def _count_failure(row: AuthThrottle, limit: int, policy: SigninPolicy, now: datetime) -> None:
    if row.failures == 0:
        row.window_started_at = now
    row.failures += 1
    row.last_failure_at = now
    wait = block_seconds_after(row.failures, limit, policy)
    if wait:
        row.blocked_until = now + timedelta(seconds=wait)


def reserve_attempt(session: Session, address: str | None, email: str | None, *, now: datetime,
                    policy: SigninPolicy) -> Attempt:
    """Lock and check the counters for one try, and count it as a failure until it proves right.

    Raises RateLimited (with `retry_after`) when this address must wait for this account, or
    when the account is under attack and this address has not signed in to it recently.
    Flushes; the caller commits before checking the password.
    """
    pair_key, account_key = throttle_keys(address, email)
    rows = _locked_rows(session, [pair_key, account_key], now)
    pair, account = rows[pair_key], rows[account_key]
    for row in (pair, account):
        _forget_stale(row, now)
    known = pair.last_success_at is not None and pair.last_success_at + KNOWN_PAIR_FOR > now
    waits = [pair.blocked_until] + ([] if known else [account.blocked_until])
    waits = [moment for moment in waits if moment is not None and moment > now]
    if waits:
        session.flush()
        raise RateLimited("too many failed sign-ins for this account; try again later",
                          retry_after=_seconds_until(max(waits), now))
    _count_failure(pair, policy.max_failures, policy, now)
    attempt = Attempt(pair_key=pair_key, account_key=None if known else account_key)
    if not known:
        attempt.account_before = (account.blocked_until, account.last_failure_at)
        _count_failure(account, policy.account_max_failures, policy, now)
        attempt.account_after = (account.blocked_until, account.last_failure_at)
    session.flush()
    return attempt


def record_success(session: Session, attempt: Attempt, *, now: datetime) -> None:
    """The password was right: clear this (address, account) counter and take back the reservation.

    Only this pair is cleared; other addresses' counters for the account, and the account's
    own count of failures, stay. Flushes.
    """
    rows = _locked_rows(session, [k for k in (attempt.pair_key, attempt.account_key) if k], now)
    pair = rows[attempt.pair_key]
    pair.failures, pair.blocked_until, pair.last_success_at = 0, None, now
    account = rows.get(attempt.account_key) if attempt.account_key else None
    if account is not None:
        account.failures = max(0, account.failures - 1)
        # Undo what the reservation set, unless a later try has changed it since.
        if account.blocked_until == attempt.account_after[0]:
            account.blocked_until = attempt.account_before[0]
        if account.last_failure_at == attempt.account_after[1]:
            account.last_failure_at = attempt.account_before[1]
    session.flush()
    purge_stale_counters(session, now=now)


def purge_stale_counters(session: Session, *, now: datetime) -> int:
    """Delete counters that hold nothing worth keeping (no block, no recent failure or success)."""
    result = session.execute(delete(AuthThrottle).where(
        or_(AuthThrottle.blocked_until.is_(None), AuthThrottle.blocked_until <= now),
        or_(AuthThrottle.last_failure_at.is_(None), AuthThrottle.last_failure_at <= now - FORGET_AFTER),
        or_(AuthThrottle.last_success_at.is_(None), AuthThrottle.last_success_at <= now - KNOWN_PAIR_FOR),
        AuthThrottle.window_started_at <= now - FORGET_AFTER,
    ).execution_options(synchronize_session=False))
    return result.rowcount or 0


def _record_failure(session: Session, email: str, reason: str, now: datetime) -> None:
    """An audit row for a refused sign-in, naming the account when the email is one (never the password)."""
    account = find_user_by_email(session, email) if len(email) <= 254 else None
    record_audit(session, action="auth.signin_failed", object_type="user",
                 object_id=account.id if account is not None else None, actor=None,
                 after={"email": normalize_email(email)[:254], "reason": reason}, now=now)


def sign_in(session: Session, address: str | None, email, password, *, policy: SigninPolicy,
            now: datetime | None = None, audit_success: bool = True) -> User:
    """The active, login-enabled user with these credentials, tried from `address`, throttled.

    Raises RateLimited before any password check when this try must wait, Unauthorized for
    wrong credentials (or an account that cannot sign in). Commits twice — the reservation
    before the password check, the outcome after it — so call it with nothing else pending.
    Every refusal writes an audit row; a success does unless `audit_success` is False (the
    API, which checks credentials on every call, would otherwise log one per call).
    """
    now = now or utcnow()
    email = email if isinstance(email, str) else ""
    try:
        attempt = reserve_attempt(session, address, email, now=now, policy=policy)
    except RateLimited:
        _record_failure(session, email, "throttled", now)
        session.commit()  # keeps the counters' forgetting of stale failures; nothing else is pending
        raise
    session.commit()
    user = authenticate(session, email, password if isinstance(password, str) else "")
    if user is None:
        # The reservation already counted this failure.
        _record_failure(session, email, "wrong_credentials", now)
        session.commit()
        raise Unauthorized("wrong email or password, or the account cannot sign in")
    record_success(session, attempt, now=now)
    if audit_success:
        record_audit(session, action="auth.signin_succeeded", object_type="user", object_id=user.id, actor=user,
                     now=now)
    session.commit()
    return user
