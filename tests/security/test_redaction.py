"""Redaction skips the secret patterns a line cannot match, and redacts exactly as running
every pattern would (Unicode look-alikes included)."""

from __future__ import annotations

import random

from pagerpal_core.security import _SECRET_PATTERNS, REDACTED, redact


def _every_pattern(text: str) -> str:
    for pattern, _needles, _ignore_case in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


LINES = [
    '{"message": "request", "path": "/api/v1/alerts", "status": 201, "user_agent": "curl/8.5"}',
    "Authorization: Basic dXNlcjpwYXNzd29yZA==",
    "authorization: bearer abcdefgh12345678",
    "APP  ppk_live_abcdefghijklmnopqrstu",
    'password="hunter2hunter2" next',
    "api-key: 0123456789 apikey=xyz api_key=abc",
    "postgresql://pagerpal:s3cret@db:5432/pagerpal",
    "https://hooks.slack.com/services/T000/B000/XXXX",
    "https://chat.example.com/hooks/abcdefghijkl",
    # Case-insensitive look-alikes: long s, Kelvin sign, dotless i, dotted capital I.
    "paſsword=abc", "toKen=abc", "authorızation: x", "AUTHORİZATION=y", "Bearer abcdefghı",
    "SECRET : 'v'", "x" * 500 + "token=late",
]


def test_redaction_equals_every_pattern_run_on_every_line():
    rng = random.Random(5)
    alphabet = "abcdeikmnoprstwyABKPS_-=:/@ .\"'ſKıİß"
    fuzz = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 60))) for _ in range(3000)]
    for line in LINES + fuzz:
        assert redact(line) == _every_pattern(line), line


def test_what_is_redacted():
    assert "dXNlcjpwYXNzd29yZA" not in redact("Authorization: Basic dXNlcjpwYXNzd29yZA==")
    assert redact("paſsword=abc") == f"paſsword={REDACTED}"
    assert redact("postgresql://pagerpal:s3cret@db/x") == f"postgresql://pagerpal:{REDACTED}@db/x"
    assert redact("plain line", ["line"]) == f"plain {REDACTED}"
    line = '{"message": "request", "path": "/api/v1/alerts", "status": 201}'
    assert redact(line) is line  # nothing that could hold a secret: the line as it came
