"""Passwords, keys and redaction."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

MIN_PASSWORD_LENGTH = 10
# A hash of nothing, checked when an account does not exist so that a wrong email costs
# as long as a wrong password (no account enumeration by timing).
_DUMMY_HASH = generate_password_hash("pagerpal-dummy-password")


def hash_password(password: str) -> str:
    """A salted scrypt hash (werkzeug's default)."""
    return generate_password_hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-time check of `password` against `password_hash` (None → always False)."""
    if not password_hash:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(password_hash, password)


def password_problem(password: str) -> str | None:
    """Why `password` is unacceptable, or None."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > 256:
        return "must be at most 256 characters"
    return None


def sha256_hex(value: str) -> str:
    """SHA-256 of the UTF-8 text, as hex (how keys and tokens are stored: high-entropy, so no salt is needed)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def constant_time_equals(a: str | None, b: str | None) -> bool:
    """Compare two secrets without leaking where they differ."""
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def new_token(nbytes: int = 32) -> str:
    """A random URL-safe token from `nbytes` of entropy."""
    return secrets.token_urlsafe(nbytes)


# --- redaction -----------------------------------------------------------------------

# Each pattern with literals it cannot match without: one must be in the text (casefolded
# where the pattern ignores case) before the regex runs. Most log lines hold none of them,
# and running the three case-insensitive patterns over every line cost more than writing
# the line. No literal holds an "i": (?i) matches "ı" and "İ" to it, which casefold keeps.
_SECRET_PATTERNS = [
    # Authorization header schemes
    (re.compile(r"(?i)\b(Basic|Bearer|App)\s+([A-Za-z0-9+/=._~-]{8,})"), ("bas", "bearer", "app"), True),
    # key=value / "key": "value" pairs whose key names a secret
    (re.compile(r"(?i)((?:password|passwd|secret|token|api[_-]?key|authorization|apikey)"
                r"[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;}]+)"), ("passw", "secret", "token", "key", "author"), True),
    # PagerPal alert source keys
    (re.compile(r"()\b(ppk_[A-Za-z0-9_-]{16,})"), ("ppk_",), False),
    # credentials inside URLs: scheme://user:password@host
    (re.compile(r"(://[^/\s:@]+:)([^@\s/]+)(?=@)"), ("://",), False),
    # chat webhook URLs, whose path is the credential (Slack, Mattermost and look-alikes)
    (re.compile(r"(hooks\.slack\.com/)(\S+)"), ("hooks.slack.com/",), False),
    (re.compile(r"(/hooks/)([A-Za-z0-9_-]{10,})"), ("/hooks/",), False),
]
REDACTED = "[REDACTED]"


def redact(text: str, secrets_: list[str] | tuple[str, ...] = ()) -> str:
    """Remove configured secret values and secret-looking substrings from `text`."""
    if not text:
        return text
    for value in sorted(secrets_, key=len, reverse=True):
        if value and len(value) >= 4:
            text = text.replace(value, REDACTED)
    folded = text.casefold()
    for pattern, needles, ignore_case in _SECRET_PATTERNS:
        haystack = folded if ignore_case else text
        if any(needle in haystack for needle in needles):
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
            folded = text.casefold()
    return text


def clip(text: str | None, limit: int = 500) -> str | None:
    """Shorten `text` to `limit` characters with an ellipsis."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def mask_destination(destination: str | None) -> str:
    """A destination with its middle hidden: "+49•••••5678", "a•••@example.com".

    Enough to tell two phones or mailboxes apart on an incident page or timeline, not
    enough to harvest people's numbers from it.
    """
    if not destination:
        return ""
    if destination.lower().startswith(("http://", "https://")):
        # A webhook URL: its path is the secret, only scheme and host stay readable.
        scheme, _, rest = destination.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        return f"{scheme}://{host}/•••"
    if "@" in destination:
        local, _, domain = destination.partition("@")
        return (local[:1] + "•" * max(3, len(local) - 1)) + "@" + domain
    if len(destination) <= 6:
        return destination[:1] + "•" * (len(destination) - 1)
    return destination[:3] + "•" * (len(destination) - 7) + destination[-4:]


# Roles that see people's contact destinations (phone numbers, email addresses) in full:
# they page, call and fix them. Viewers only watch, so they get the masked form.
FULL_DESTINATION_ROLES = ("admin", "responder")


def destination_for(role: str | None, destination: str | None) -> str | None:
    """`destination` as a signed-in user with `role` may see it: in full, or masked for viewers.

    Webhook URLs are masked for everyone: their path is a credential, like an API key.

    The one decision the API's user, contact-method and notification serializers share.
    """
    if destination is None or (role in FULL_DESTINATION_ROLES
                               and not destination.lower().startswith(("http://", "https://"))):
        return destination
    return mask_destination(destination)
