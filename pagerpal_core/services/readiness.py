"""The production readiness checklist, as `flask pagerpal check` and the settings page show it.

Each check returns one `Check` — ok, warn or fail — with a sentence an operator can act on.
The list is judged by production standards whatever ENVIRONMENT says: it answers "may this
install page people for real?", so a development default is a fail here even though the
development server happily runs with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from urllib.parse import urlsplit

from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from pagerpal_core.models import User
from pagerpal_core.schema import head_revisions
from pagerpal_core.services.provider_health import REQUIRED_SETTINGS, provider_health
from pagerpal_core.services.system import list_job_health
from pagerpal_core.settings import Settings, secret_key_problem

OK, WARN, FAIL = "ok", "warn", "fail"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    name: str
    status: str  # ok | warn | fail
    message: str

    def as_dict(self) -> dict:
        """The check as JSON-ready values."""
        return asdict(self)


def has_failures(checks: list[Check]) -> bool:
    """True when any check failed (the CLI exits non-zero)."""
    return any(check.status == FAIL for check in checks)


# --- configuration checks (no database) ------------------------------------------------

def check_environment(settings: Settings) -> Check:
    """ENVIRONMENT=production turns on the startup refusal of unsafe settings."""
    if settings.is_production:
        return Check("environment", OK, "ENVIRONMENT=production: startup refuses unsafe settings")
    return Check("environment", WARN, f"ENVIRONMENT={settings.environment}: the startup safety "
                 "checks are off; set ENVIRONMENT=production")


def check_secret_key(settings: Settings) -> Check:
    """SECRET_KEY is no published placeholder, long and random enough to sign sessions safely."""
    problem = secret_key_problem(settings.secret_key)
    if problem:
        return Check("secret_key", FAIL, problem)
    return Check("secret_key", OK, f"SECRET_KEY is set ({len(settings.secret_key)} characters)")


def check_infobip_receipts(settings: Settings) -> Check:
    """With Infobip configured, its delivery-receipt endpoint demands INFOBIP_RECEIPT_TOKEN."""
    if not settings.infobip_configured:
        return Check("infobip_receipts", OK, "Infobip is not configured")
    if not settings.infobip_receipt_token:
        return Check("infobip_receipts", FAIL, "Infobip is configured but INFOBIP_RECEIPT_TOKEN is empty: "
                     "anyone can post delivery receipts; set it and send it as X-Infobip-Receipt-Token")
    return Check("infobip_receipts", OK, "delivery receipts require X-Infobip-Receipt-Token")


def check_secure_cookies(settings: Settings) -> Check:
    """Session cookies travel over HTTPS only."""
    if not settings.session_cookie_secure:
        return Check("secure_cookies", FAIL, "SESSION_COOKIE_SECURE is false; serve over HTTPS and "
                     "set it to true")
    return Check("secure_cookies", OK, "session cookies are sent over HTTPS only")


def check_base_url(settings: Settings) -> Check:
    """Notification links use https:// and a host people can reach."""
    parts = urlsplit(settings.base_url)
    if parts.scheme != "https":
        return Check("base_url", FAIL, f"PAGERPAL_BASE_URL is {settings.base_url}; notification "
                     "links must use https://")
    if (parts.hostname or "") in LOCAL_HOSTS:
        return Check("base_url", WARN, f"PAGERPAL_BASE_URL points at {parts.hostname}; people "
                     "opening a page link elsewhere cannot reach it")
    return Check("base_url", OK, f"PAGERPAL_BASE_URL is {settings.base_url}")


def check_allowed_origins(settings: Settings) -> Check:
    """Browser origins are listed explicitly (never *), ideally https only."""
    origins = settings.allowed_origins
    if not origins:
        return Check("allowed_origins", FAIL, "ALLOWED_ORIGINS is empty; list the origins "
                     "operators use")
    if "*" in origins:
        return Check("allowed_origins", FAIL, "ALLOWED_ORIGINS contains *; list explicit origins")
    plain = [origin for origin in origins if not origin.startswith("https://")]
    if plain:
        return Check("allowed_origins", WARN, f"ALLOWED_ORIGINS has non-https origins: "
                     f"{', '.join(plain)}")
    return Check("allowed_origins", OK, f"ALLOWED_ORIGINS: {', '.join(origins)}")


def check_providers(settings: Settings) -> Check:
    """With sending enabled, at least one channel can actually send."""
    # provider_health is what the worker's senders and /settings use: "configured" agrees.
    # Webhooks need no setting (each contact method or team names its URL), so they cannot make
    # sending "ready" on their own: people are paged by SMS, WhatsApp or email.
    channels = [h for h in provider_health(settings) if REQUIRED_SETTINGS[h.channel]]
    ready = [health.channel for health in channels if health.configured]
    if not settings.notification_sending_enabled:
        return Check("providers", WARN, "NOTIFICATION_SENDING_ENABLED is false: pages are recorded "
                     "as suppressed and nobody is called")
    if not ready:
        missing = "; ".join(f"{h.channel}: missing {', '.join(h.missing)}" for h in channels)
        return Check("providers", FAIL, f"sending is enabled but no channel is configured ({missing})")
    unready = [health.channel for health in channels if not health.configured]
    note = f"; not configured (pages on them fail): {', '.join(unready)}" if unready else ""
    return Check("providers", OK, f"sending enabled via {', '.join(ready)}{note}")


def check_metrics(settings: Settings) -> Check:
    """/metrics is off or token-protected rather than open to all."""
    if settings.metrics == "open":
        return Check("metrics", WARN, "METRICS=open: anyone who reaches /metrics can read it; "
                     "prefer token:<secret> or a private network")
    if settings.metrics == "off":
        return Check("metrics", OK, "METRICS=off")
    return Check("metrics", OK, "METRICS requires a bearer token")


# --- database checks -------------------------------------------------------------------

def check_database(session: Session) -> Check:
    """The database answers; SQLite is a warning (small single-node installs only)."""
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        session.rollback()
        cause = getattr(exc, "orig", None) or exc
        return Check("database", FAIL, f"database unreachable: {type(cause).__name__}")
    bind = session.get_bind()
    backend = bind.dialect.name
    if backend == "sqlite":
        return Check("database", WARN, "database reachable (SQLite: fine for one small node on "
                     "durable disk; PostgreSQL for anything more)")
    return Check("database", OK, f"database reachable ({backend})")


def check_migrations(session: Session) -> Check:
    """The schema is at the Alembic head."""
    # Read the revision on the session's own connection: a second connection would wait
    # behind this session's SQLite write lock (BEGIN IMMEDIATE).
    current = set(MigrationContext.configure(session.connection()).get_current_heads())
    heads = head_revisions()
    if current != heads:
        return Check("migrations", FAIL, f"database is not at the migration head (at "
                     f"{sorted(current) or 'nothing'}, head {sorted(heads)}): run `flask db upgrade`")
    return Check("migrations", OK, "database is at the migration head")


def check_admin(session: Session) -> Check:
    """At least one active admin has a password (someone can sign in and configure)."""
    count = session.scalar(select(func.count()).select_from(User).where(
        User.role == "admin", User.active.is_(True), User.password_hash.is_not(None)))
    if not count:
        return Check("admin", FAIL, "no active admin can sign in; run `flask pagerpal create-admin`")
    return Check("admin", OK, f"{count} active admin account(s)")


def check_worker(session: Session, *, now: datetime) -> list[Check]:
    """Heartbeat freshness and the single leader, from the worker's job_status rows."""
    jobs = [health for health in list_job_health(session, now=now) if health.job.enabled]
    if not jobs:
        missing = "no worker has ever run; start `pagerpal-worker`"
        return [Check("worker_heartbeat", FAIL, missing), Check("worker_leader", FAIL, missing)]
    stale = [health.job.name for health in jobs if health.stale]
    if stale:
        heartbeat = Check("worker_heartbeat", FAIL, f"no recent heartbeat from: {', '.join(stale)}; "
                          "is `pagerpal-worker` running?")
    else:
        newest = max(health.job.last_started_at for health in jobs)
        age = max(0.0, (now - newest).total_seconds())
        heartbeat = Check("worker_heartbeat", OK, f"{len(jobs)} worker step(s) beating "
                          f"(last {age:.0f}s ago)")
    leaders = {(health.job.leader_host, health.job.leader_pid)
               for health in jobs if not health.stale and health.job.leader_host}
    standbys = set()
    for health in jobs:
        standbys.update((health.job.standby_instances or {}).keys())
    if not leaders:
        leader = Check("worker_leader", FAIL, "no worker holds the leadership lock")
    elif len(leaders) > 1:
        names = ", ".join(f"{host}:{pid}" for host, pid in sorted(leaders, key=str))
        leader = Check("worker_leader", FAIL, f"{len(leaders)} workers act as leader ({names}); "
                       "exactly one may")
    else:
        host, pid = next(iter(leaders))
        extra = f", {len(standbys)} standby" if standbys else ""
        leader = Check("worker_leader", OK, f"one leader: {host}:{pid}{extra}")
    return [heartbeat, leader]


def run_readiness_checks(session: Session, settings: Settings, *, now: datetime) -> list[Check]:
    """Every check, configuration first, then the database and the worker.

    Database checks are skipped (failed) when the database cannot be reached, so one
    outage reads as one cause, not ten.
    """
    checks = [
        check_environment(settings),
        check_secret_key(settings),
        check_secure_cookies(settings),
        check_base_url(settings),
        check_allowed_origins(settings),
        check_providers(settings),
        check_infobip_receipts(settings),
        check_metrics(settings),
    ]
    database = check_database(session)
    checks.append(database)
    if database.status == FAIL:
        for name in ("migrations", "admin", "worker_heartbeat", "worker_leader"):
            checks.append(Check(name, FAIL, "not checked: database unreachable"))
        return checks
    migrations = check_migrations(session)
    checks.append(migrations)
    if migrations.status == FAIL:
        for name in ("admin", "worker_heartbeat", "worker_leader"):
            checks.append(Check(name, FAIL, "not checked: database not migrated"))
        return checks
    checks.append(check_admin(session))
    checks.extend(check_worker(session, now=now))
    return checks
