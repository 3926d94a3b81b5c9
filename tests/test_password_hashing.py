"""The production password hasher, checked once (the rest of the suite uses a cheap one)."""

from __future__ import annotations

from pagerpal_core.security import hash_password, verify_password


def test_passwords_are_salted_scrypt_hashes(real_password_hashing):
    first, second = hash_password("correct-horse-battery"), hash_password("correct-horse-battery")
    assert first.startswith("scrypt:") and second.startswith("scrypt:")
    assert first != second  # salted
    assert verify_password(first, "correct-horse-battery")
    assert not verify_password(first, "correct-horse-batterz")
    assert not verify_password(None, "correct-horse-battery")


def test_the_suite_hashes_cheaply_everywhere_else():
    assert hash_password("correct-horse-battery").startswith("pbkdf2:sha256:1$")
