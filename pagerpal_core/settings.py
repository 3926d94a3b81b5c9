"""Typed settings, parsed once from the environment (and a `.env` file when present).

Every variable has a small parser that raises `ConfigError` naming the variable, so a
bad value stops the process at startup instead of failing on the first page at 3 a.m.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "change-me"
MIN_SECRET_KEY_LENGTH = 32
# Every SECRET_KEY value this repository ships, or ever shipped, as a default or an example.
# Each is public, so whoever knows it can forge sessions: production refuses them all, whatever
# their length. tests/security/test_secret_key.py checks that every value written in
# docker-compose.yml, .env.example and README.md is listed here.
PLACEHOLDER_SECRET_KEYS = frozenset({
    DEFAULT_SECRET_KEY,  # the development default
    "placeholder-secret-key-replace-before-real-use",  # docker-compose.yml's default until it required one
    "<long-random-secret>",  # .env.example
    "smoke-placeholder-secret-key-not-for-real-use-0123456789",  # scripts/smoke-production, formerly
})
# A random key of 32+ characters from any usual alphabet (hex, base64) has far more distinct
# characters than this; fewer means a typed or patterned value, e.g. "x" * 40.
MIN_SECRET_KEY_DISTINCT_CHARACTERS = 8
GENERATE_SECRET_KEY = 'python3 -c "import secrets; print(secrets.token_urlsafe(48))"'
ENVIRONMENTS = ("development", "test", "production")


class ConfigError(Exception):
    """One or more settings are invalid; `problems` lists each one."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(self.problems))


# --- small parsers: each takes the raw string and the variable name -----------------

def _text(raw: str, name: str) -> str:
    return raw.strip()


def _bool(raw: str, name: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _int(raw: str, name: str, minimum: int = 0) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _positive_int(raw: str, name: str) -> int:
    return _int(raw, name, minimum=1)


def _port(raw: str, name: str) -> int:
    value = _int(raw, name, minimum=1)
    if value > 65535:
        raise ValueError(f"{name} must be a TCP port (1-65535), got {value}")
    return value


def _positive_float(raw: str, name: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{name} must be greater than 0, got {raw!r}")
    return value


def _environment(raw: str, name: str) -> str:
    value = raw.strip().lower()
    if value not in ENVIRONMENTS:
        raise ValueError(f"{name} must be one of {', '.join(ENVIRONMENTS)}, got {raw!r}")
    return value


def _url(raw: str, name: str) -> str:
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http(s) URL, got {raw!r}")
    return value


def _optional_url(raw: str, name: str) -> str:
    """Empty (off) or an http(s) URL, kept exactly as given (a trailing slash may matter to it)."""
    value = raw.strip()
    if value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{name} must be an http(s) URL or empty")
    return value


def _database_url(raw: str, name: str) -> str:
    value = raw.strip()
    if not value:
        return ""
    # Heroku-style URLs say postgres://, which SQLAlchemy no longer accepts.
    if value.startswith("postgres://"):
        value = "postgresql://" + value[len("postgres://"):]
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; we ship psycopg2. PagerPal v1's
    # documented postgresql+psycopg:// URLs are the same database address: they work unchanged.
    for prefix in ("postgresql://", "postgresql+psycopg://"):
        if value.startswith(prefix):
            value = "postgresql+psycopg2://" + value[len(prefix):]
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if not (scheme.startswith("postgresql") or scheme.startswith("sqlite")):
        raise ValueError(f"{name} must be a postgresql:// or sqlite:// URL")
    return value


def _origins(raw: str, name: str) -> tuple[str, ...]:
    return tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())


def _smtp_security(raw: str, name: str) -> str:
    value = raw.strip().lower()
    if value not in ("starttls", "tls", "none"):
        raise ValueError(f"{name} must be starttls, tls or none, got {raw!r}")
    return value


def _self_test_channel(raw: str, name: str) -> str:
    value = raw.strip().lower()
    if value not in ("sms", "whatsapp", "email"):
        raise ValueError(f"{name} must be sms, whatsapp or email, got {raw!r}")
    return value


def _log_level(raw: str, name: str) -> str:
    value = raw.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"{name} must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return value


def _metrics_mode(raw: str, name: str) -> str:
    value = raw.strip()
    if value.lower() in ("off", "open"):
        return value.lower()
    if value.lower().startswith("token:") and len(value) > len("token:"):
        return value
    raise ValueError(f"{name} must be off, open or token:<secret>, got a different value")


def _repeats_a_short_unit(text: str) -> bool:
    """True when `text` is one short run repeated ("secretsecretsecret", "ab-ab-ab-ab")."""
    return any(all(text[i] == text[i % period] for i in range(len(text)))
               for period in range(1, len(text) // 2 + 1))


def secret_key_problem(key: str) -> str | None:
    """Why `key` cannot sign production sessions and CSRF tokens, or None.

    Refused: the development default and every placeholder in PLACEHOLDER_SECRET_KEYS,
    fewer than MIN_SECRET_KEY_LENGTH characters, too few distinct characters, and a short
    word or pattern repeated to length.
    """
    key = key or ""
    if key.strip() == DEFAULT_SECRET_KEY:
        return f"SECRET_KEY is the default; generate one: {GENERATE_SECRET_KEY}"
    if key.strip().lower() in {value.lower() for value in PLACEHOLDER_SECRET_KEYS}:
        return ("SECRET_KEY is a placeholder published in PagerPal's repository (anyone can forge "
                f"sessions with it); generate one: {GENERATE_SECRET_KEY}")
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return f"SECRET_KEY is {len(key)} characters; use a random value of at least {MIN_SECRET_KEY_LENGTH}"
    distinct = len(set(key))
    if distinct < MIN_SECRET_KEY_DISTINCT_CHARACTERS:
        return (f"SECRET_KEY uses only {distinct} distinct characters; it is not random. "
                f"Generate one: {GENERATE_SECRET_KEY}")
    if _repeats_a_short_unit(key.lower()):
        return f"SECRET_KEY is a short word or pattern repeated; generate one: {GENERATE_SECRET_KEY}"
    return None


def _setting(env: str, parser, default: str, secret: bool = False):
    return field(default=None, metadata={"env": env, "parser": parser, "raw_default": default,
                                         "secret": secret})


@dataclass(frozen=True)
class Settings:
    """All configuration. Build it with `Settings.from_env()`; fields keep their env names."""

    secret_key: str = _setting("SECRET_KEY", _text, DEFAULT_SECRET_KEY, secret=True)
    database_url: str = _setting("DATABASE_URL", _database_url, "")
    environment: str = _setting("ENVIRONMENT", _environment, "development")
    session_cookie_secure: bool = _setting("SESSION_COOKIE_SECURE", _bool, "false")
    base_url: str = _setting("PAGERPAL_BASE_URL", _url, "http://127.0.0.1:8000")
    allowed_origins: tuple = _setting("ALLOWED_ORIGINS", _origins, "http://127.0.0.1:8000")
    instance_path: str = _setting("PAGERPAL_INSTANCE_PATH", _text, "")
    log_level: str = _setting("LOG_LEVEL", _log_level, "INFO")
    max_request_bytes: int = _setting("MAX_REQUEST_BYTES", _positive_int, "1048576")
    # Reverse proxies in front of the app whose X-Forwarded-* headers are trusted (0 = none).
    trusted_proxies: int = _setting("TRUSTED_PROXIES", _int, "0")

    notification_sending_enabled: bool = _setting("NOTIFICATION_SENDING_ENABLED", _bool, "false")
    notification_retry_worker_enabled: bool = _setting("NOTIFICATION_RETRY_WORKER_ENABLED", _bool, "true")
    escalation_worker_enabled: bool = _setting("ESCALATION_WORKER_ENABLED", _bool, "true")
    worker_poll_interval: float = _setting("WORKER_POLL_INTERVAL", _positive_float, "1.0")
    # Retries are bounded by time (the window after the first attempt); 0 = no count limit besides.
    notification_max_attempts: int = _setting("NOTIFICATION_MAX_ATTEMPTS", _int, "0")
    notification_retry_window_seconds: float = _setting("NOTIFICATION_RETRY_WINDOW_SECONDS", _positive_float, "900")
    # An SMS/WhatsApp page with no delivered receipt this long after sending fails over to the
    # user's next contact method (only when INFOBIP_RECEIPT_TOKEN is set: receipts are configured).
    delivery_confirm_seconds: float = _setting("DELIVERY_CONFIRM_SECONDS", _positive_float, "120")
    # At most this many messages per destination per window; the rest fold into one summary.
    pages_per_destination: int = _setting("PAGES_PER_DESTINATION", _positive_int, "5")
    page_bundle_window_seconds: float = _setting("PAGE_BUNDLE_WINDOW_SECONDS", _positive_float, "120")
    notification_retry_base_seconds: float = _setting("NOTIFICATION_RETRY_BASE_SECONDS", _positive_float, "10")
    notification_retry_max_seconds: float = _setting("NOTIFICATION_RETRY_MAX_SECONDS", _positive_float, "600")
    notification_lease_seconds: float = _setting("NOTIFICATION_LEASE_SECONDS", _positive_float, "60")

    infobip_base_url: str = _setting("INFOBIP_BASE_URL", _text, "")
    infobip_api_key: str = _setting("INFOBIP_API_KEY", _text, "", secret=True)
    infobip_sms_sender: str = _setting("INFOBIP_SMS_SENDER", _text, "")
    infobip_whatsapp_sender: str = _setting("INFOBIP_WHATSAPP_SENDER", _text, "")
    infobip_whatsapp_template: str = _setting("INFOBIP_WHATSAPP_TEMPLATE", _text, "")
    infobip_receipt_token: str = _setting("INFOBIP_RECEIPT_TOKEN", _text, "", secret=True)
    # Empty switches the inbound (reply command) endpoint off: it is never open.
    infobip_inbound_token: str = _setting("INFOBIP_INBOUND_TOKEN", _text, "", secret=True)
    # How long a page's signed action link (/a/<token>) keeps working.
    action_link_ttl_seconds: int = _setting("ACTION_LINK_TTL_SECONDS", _positive_int, "86400")
    smtp_host: str = _setting("SMTP_HOST", _text, "")
    smtp_port: int = _setting("SMTP_PORT", _port, "587")
    smtp_user: str = _setting("SMTP_USER", _text, "")
    smtp_password: str = _setting("SMTP_PASSWORD", _text, "", secret=True)
    smtp_from: str = _setting("SMTP_FROM", _text, "")
    smtp_security: str = _setting("SMTP_SECURITY", _smtp_security, "starttls")
    provider_timeout_seconds: float = _setting("PROVIDER_TIMEOUT_SECONDS", _positive_float, "10")
    # Chat webhooks may post to private, loopback and link-local addresses (cloud metadata
    # included) only when this is true: a webhook URL is otherwise a way to probe the inside.
    webhook_allow_private: bool = _setting("WEBHOOK_ALLOW_PRIVATE", _bool, "false")

    alert_source_rate_limit_capacity: int = _setting("ALERT_SOURCE_RATE_LIMIT_CAPACITY", _positive_int, "120")
    alert_source_rate_limit_refill_per_second: float = _setting(
        "ALERT_SOURCE_RATE_LIMIT_REFILL_PER_SECOND", _positive_float, "2.0")
    # Sign-in throttle (services/signin.py): failures per (address, account) before a delay, the
    # first delay (doubling with each further failure), and failures per account from everywhere.
    login_max_failures: int = _setting("LOGIN_MAX_FAILURES", _positive_int, "5")
    login_block_seconds: int = _setting("LOGIN_BLOCK_SECONDS", _positive_int, "300")
    login_account_max_failures: int = _setting("LOGIN_ACCOUNT_MAX_FAILURES", _positive_int, "20")
    # A browser session unused for this long is signed out on the server.
    session_idle_minutes: int = _setting("SESSION_IDLE_MINUTES", _positive_int, "720")
    # Audit rows older than this many days are deleted by the worker's chores step.
    audit_retention_days: int = _setting("AUDIT_RETENTION_DAYS", _positive_int, "365")
    metrics: str = _setting("METRICS", _metrics_mode, "off")
    # Pinged (GET) by the worker after each healthy watchdog run, so an outside monitor notices a
    # dead PagerPal. Secret: such URLs usually carry the monitor's token.
    watchdog_ping_url: str = _setting("WATCHDOG_PING_URL", _optional_url, "", secret=True)
    # The end-to-end self-test (pagerpal_worker/steps/self_test.py): every this many minutes (0 = off)
    # the worker sends a synthetic alert through the web's ingestion URL to SELF_TEST_DESTINATION on
    # SELF_TEST_CHANNEL via the outbox and the real sender, then resolves it. A failure or an overdue
    # run opens an incident on SELF_TEST_POLICY_ID (0: the escalation policy with the lowest id).
    self_test_interval_minutes: int = _setting("SELF_TEST_INTERVAL_MINUTES", _int, "0")
    self_test_destination: str = _setting("SELF_TEST_DESTINATION", _text, "")
    self_test_channel: str = _setting("SELF_TEST_CHANNEL", _self_test_channel, "sms")
    self_test_policy_id: int = _setting("SELF_TEST_POLICY_ID", _int, "0")

    @classmethod
    def from_env(cls, environ: dict | None = None, overrides: dict | None = None,
                 dotenv_path: str | os.PathLike | None = None) -> Settings:
        """Parse settings from `environ` (default: os.environ merged over `.env`).

        `overrides` maps env names or field names to values (already typed or raw strings).
        Raises ConfigError listing every bad variable at once.
        """
        if environ is None:
            environ = {**read_dotenv(dotenv_path or Path.cwd() / ".env"), **os.environ}
        overrides = dict(overrides or {})
        by_field = {f.name: f for f in fields(cls)}
        by_env = {f.metadata["env"]: f for f in fields(cls)}
        values, problems = {}, []
        for key in list(overrides):
            if key in by_env:
                overrides[by_env[key].name] = overrides.pop(key)
            elif key not in by_field:
                problems.append(f"unknown setting {key!r}")
        for f in fields(cls):
            name = f.metadata["env"]
            if f.name in overrides and not isinstance(overrides[f.name], str):
                values[f.name] = overrides[f.name]
                continue
            raw = overrides.get(f.name, environ.get(name, f.metadata["raw_default"]))
            try:
                values[f.name] = f.metadata["parser"](raw, name)
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError(problems)
        settings = cls(**values)
        if not settings.instance_path:
            settings = settings.replace(instance_path=str(default_instance_path()))
        if not settings.database_url:
            db_file = Path(settings.instance_path) / "pagerpal.db"
            settings = settings.replace(database_url=f"sqlite:///{db_file}")
        return settings

    def replace(self, **changes) -> Settings:
        """A copy with some fields changed (settings are immutable)."""
        return type(self)(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})

    @property
    def is_production(self) -> bool:
        """True when ENVIRONMENT is production (the stricter startup checks apply)."""
        return self.environment == "production"

    @property
    def infobip_configured(self) -> bool:
        """True when Infobip is set up to send (its receipts endpoint then matters)."""
        return bool(self.infobip_base_url or self.infobip_api_key)

    @property
    def is_sqlite(self) -> bool:
        """True when DATABASE_URL names SQLite."""
        return self.database_url.startswith("sqlite")

    def secret_values(self) -> list[str]:
        """The configured secret values, for log and error redaction."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["secret"] and isinstance(value, str) and len(value) >= 4:
                out.append(value)
        password = urlsplit(self.database_url).password if "://" in self.database_url else None
        if password:
            out.append(password)
        return out

    def production_problems(self) -> list[str]:
        """What makes this configuration unfit for production (the schema check is separate)."""
        problems = []
        secret_problem = secret_key_problem(self.secret_key)
        if secret_problem:
            problems.append(secret_problem)
        if self.infobip_configured and not self.infobip_receipt_token:
            problems.append("INFOBIP_RECEIPT_TOKEN must be set when Infobip is configured: without it anyone "
                            "can post delivery receipts to /api/v1/notifications/infobip/receipts")
        if not self.session_cookie_secure:
            problems.append("SESSION_COOKIE_SECURE must be true in production (serve over HTTPS)")
        if "*" in self.allowed_origins:
            problems.append("ALLOWED_ORIGINS must list explicit origins, not *")
        if not self.allowed_origins:
            problems.append("ALLOWED_ORIGINS must list the origins operators use")
        return problems


def default_instance_path() -> Path:
    """Where local state lives by default: `instance/` beside the packages, like Flask's.

    An installed (non-editable) package uses `<prefix>/var/pagerpal-instance` instead, so
    the web app and the worker agree on the SQLite file without importing Flask here.
    """
    if "site-packages" in str(PROJECT_ROOT):
        return Path(sys.prefix) / "var" / "pagerpal-instance"
    return PROJECT_ROOT / "instance"


def read_dotenv(path: str | os.PathLike) -> dict[str, str]:
    """Read KEY=VALUE lines from a `.env` file; missing file → {}. Quotes are stripped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return {}
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key] = value
    return out
