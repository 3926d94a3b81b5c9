"""Every setting is in .env.example and the README, and neither names a setting that no longer exists."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from pagerpal_core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SETTING_NAMES = {f.metadata["env"] for f in fields(Settings)}


def env_example_names() -> set[str]:
    """Names assigned in .env.example, including commented-out `# NAME=value` examples."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^(?:#\s*)?([A-Z][A-Z0-9_]+)=", text, flags=re.M))


def test_env_example_lists_every_setting_and_nothing_else():
    names = env_example_names()
    assert SETTING_NAMES - names == set(), "settings missing from .env.example"
    assert names - SETTING_NAMES == set(), ".env.example names unknown settings"


def test_readme_mentions_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = {name for name in SETTING_NAMES if f"`{name}`" not in readme and f"`{name}=" not in readme}
    assert missing == set(), "settings the README never mentions"
