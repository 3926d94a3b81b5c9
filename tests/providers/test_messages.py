"""Page text per channel (pagerpal_core.messages): SMS within two segments, link never cut."""

from __future__ import annotations

import pytest

from pagerpal_core.messages import render_page, sms_fits, sms_units
from pagerpal_core.models import Incident

BASE = "https://pagerpal.example.test"
LINK = f"{BASE}/incidents/4242"


def incident(title="Database down", description="primary unreachable", severity="critical"):
    return Incident(id=4242, title=title, description=description, severity=severity, status="triggered")


def test_sms_has_severity_title_source_description_and_link():
    body = render_page(incident(), "sms", base_url=BASE, source_name="grafana").body
    assert body == f"[CRITICAL] Database down (grafana) primary unreachable {LINK}"


@pytest.mark.parametrize("description", ["x " * 400, "Ünïcödé ✓ " * 60, "brackets [] {} " * 50])
def test_long_sms_fits_two_segments_and_keeps_the_link(description):
    body = render_page(incident(description=description), "sms", base_url=BASE, source_name="grafana").body
    assert body.endswith(" " + LINK)
    assert sms_fits(body)
    assert body.startswith("[CRITICAL] Database down (grafana) ")
    assert "..." in body


def test_sms_counts_gsm_extension_characters_as_two():
    assert sms_units("[]") == ("GSM-7", 4)
    assert sms_units("abc") == ("GSM-7", 3)
    assert sms_units("abc…") == ("UCS-2", 4)
    assert sms_fits("a" * 306) and not sms_fits("a" * 307)
    assert sms_fits("é" * 306)                      # é is in the GSM alphabet
    assert sms_fits("✓" * 134) and not sms_fits("✓" * 135)
    assert not sms_fits("[" * 154)


def test_sms_shortens_an_enormous_title_but_never_the_link():
    body = render_page(incident(title="T" * 500, description="d" * 500), "sms", base_url=BASE,
                       source_name="grafana").body
    assert body.endswith(LINK) and sms_fits(body)


def test_email_subject_and_parts():
    msg = render_page(incident(description="<script>x</script>"), "email", base_url=BASE, source_name="grafana")
    assert msg.subject == "[CRITICAL] Database down"
    assert LINK in msg.body and "grafana" in msg.body


def test_whatsapp_keeps_the_link_under_its_limit():
    msg = render_page(incident(description="y" * 5000), "whatsapp", base_url=BASE, source_name="grafana")
    assert msg.body.endswith(LINK) and len(msg.body) <= 1000
    assert msg.body.startswith("*[CRITICAL] Database down*")
