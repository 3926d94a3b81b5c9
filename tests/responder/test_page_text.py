"""Page text with an action link and a reply code: it still fits two SMS segments, link and hint whole."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pagerpal_core.messages import render_page, sms_fits
from pagerpal_core.models import Incident
from pagerpal_core.services.action_links import new_token
from pagerpal_core.services.replies import parse_inbound

BASE = "https://pagerpal.example.test"
README = Path(__file__).resolve().parents[2] / "README.md"


def incident(title="Disk full on db-1", description="/var at 99%"):
    return Incident(id=4242, title=title, description=description, severity="critical", status="triggered")


def test_tokens_are_128_bit_url_safe_and_short():
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", t) for t in tokens)


def test_sms_ends_with_link_and_reply_hint():
    token = new_token()
    body = render_page(incident(), "sms", base_url=BASE, source_name="grafana", action_token=token,
                       reply_code="4821").body
    assert body == f"[CRITICAL] Disk full on db-1 (grafana) /var at 99% {BASE}/a/{token} Reply 4821 ACK / 4821 RES"


@pytest.mark.parametrize("title, description", [
    ("T" * 500, "d" * 500),
    ("Ünïcödé ✓ disk " * 20, "✓ " * 300),
    ("[brackets] {} " * 40, "~|^ " * 100),
])
def test_long_pages_still_fit_two_segments_with_link_and_hint_whole(title, description):
    token = new_token()
    body = render_page(incident(title, description), "sms", base_url=BASE, source_name="grafana",
                       action_token=token, reply_code="4821").body
    assert sms_fits(body, 2)
    assert body.endswith(f" {BASE}/a/{token} Reply 4821 ACK / 4821 RES")


def test_whatsapp_and_email_carry_the_link():
    token = new_token()
    wa = render_page(incident(), "whatsapp", base_url=BASE, source_name="grafana", action_token=token,
                     reply_code="4821").body
    assert wa.endswith(f"\n{BASE}/a/{token}\nReply 4821 ACK / 4821 RES")
    mail = render_page(incident(), "email", base_url=BASE, source_name="grafana", action_token=token)
    for action in ("ack", "resolve", "escalate"):
        assert f"{BASE}/a/{token}?do={action}" in mail.body
    assert f"{BASE}/incidents/4242" in mail.body
    assert "Reply" not in mail.body


def test_readme_inbound_example_is_an_inbound_body():
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Acknowledging from a page\n", 1)[1].split("\n## ", 1)[0]
    body = re.search(r"-d '(\{.*?\})'", section, flags=re.S).group(1)
    [reply] = parse_inbound(json.loads(body))
    assert (reply.channel, reply.sender, reply.text) == ("sms", "+41793026727", "4821 ack")
    for name in ("INFOBIP_INBOUND_TOKEN", "X-Infobip-Inbound-Token", "MO_JSON_2", "?token=",
                 "/api/v1/notifications/infobip/inbound", "ACTION_LINK_TTL_SECONDS"):
        assert name in section
