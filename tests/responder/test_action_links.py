"""Signed action links: alert → page received → link parsed out of it → GET (nothing) → POST (acts)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from pagerpal_core.errors import NotFound
from pagerpal_core.messages import sms_fits
from pagerpal_core.models import ActionLink, User
from pagerpal_core.services.action_links import LinkGone, LinkSigning, load_link, perform_link_action
from pagerpal_core.services.users import deactivate_user
from pagerpal_core.settings import Settings
from pagerpal_core.timeutil import utcnow
from tests.responder.conftest import (
    ADA_EMAIL,
    ADA_SMS,
    BASE_URL,
    BEN_SMS,
    SECRET,
    form_token,
    link_token,
    reply_code,
)

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")


def post(client, token: str, action: str, page_html: str, incident_id: int, **extra):
    data = {"form_token": form_token(page_html), "incident": str(incident_id), "action": action, **extra}
    return client.post(f"/a/{token}", data=data)


def paged(r) -> str:
    """Run the worker once and return the one SMS Ada received."""
    r.cycle()
    [text] = r.sms_to(ADA_SMS)
    return text


def test_sms_link_acknowledges_and_stops_escalation(responder):
    r = responder
    incident_id = r.alert()
    sms = paged(r)
    assert sms.startswith("[CRITICAL] Disk full on db-1 (grafana-prod)")
    assert sms_fits(sms, 2), "title + link + reply hint must fit two SMS segments"
    token = link_token(sms)
    assert len(token) == 22
    reply_code(sms)   # ends with "Reply <code> ACK / <code> RES"

    # GET changes nothing (scanners and unfurlers fetch links).
    before = r.state()
    page = r.client.get(f"/a/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Disk full on db-1" in html and "critical" in html and "triggered" in html
    assert "Acknowledge" in html and "Resolve" in html and "Escalate" in html
    assert "Ada Lovelace" in html  # who holds it / who acts
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert r.client.get(f"/a/{token}?do=ack").status_code == 200
    assert r.client.head(f"/a/{token}").status_code == 200
    assert r.state() == before

    # POST acknowledges as the paged user, recording the channel.
    done = post(r.client, token, "ack", html, incident_id)
    assert done.status_code == 200
    assert f"Acknowledged #{incident_id} Disk full on db-1" in done.get_data(as_text=True)
    incident = r.incident(incident_id)
    assert incident.status == "acknowledged" and incident.acknowledged_by_id == r.ada.id
    ack = [e for e in r.events(incident_id) if e.kind == "acknowledged"]
    assert len(ack) == 1 and ack[0].actor_user_id == r.ada.id and ack[0].actor_label == "Ada Lovelace"
    assert "via SMS link" in ack[0].message and ack[0].detail.get("via") == "SMS link"

    # Escalation stops: no level-2 page once the delay has passed.
    r.cycle(r.later(11))
    r.cycle(r.later(25))
    assert r.sms_to(BEN_SMS) == []
    assert r.incident(incident_id).current_level == 1

    # A second POST changes nothing and says who did it.
    before = r.state()
    again = post(r.client, token, "ack", html, incident_id)
    assert again.status_code == 200
    assert "already acknowledged by Ada Lovelace at" in again.get_data(as_text=True)
    assert r.state() == before

    # The same link may resolve later, once.
    resolved = post(r.client, token, "resolve", html, incident_id)
    assert resolved.status_code == 200 and f"Resolved #{incident_id}" in resolved.get_data(as_text=True)
    assert r.incident(incident_id).status == "resolved"
    before = r.state()
    assert "already resolved by Ada Lovelace" in post(r.client, token, "resolve", html, incident_id).get_data(
        as_text=True)
    assert r.state() == before
    # A resolved incident offers no buttons any more.
    assert 'name="action"' not in r.client.get(f"/a/{token}").get_data(as_text=True)


def test_email_links_one_per_action_each_through_the_confirm_page(responder):
    r = responder
    incident_id = r.alert()
    r.cycle()
    [mail] = r.emails_to(ADA_EMAIL)
    text, html_part = mail.text_part(), mail.html_part()
    urls = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in text.splitlines()
            if line.startswith(("Acknowledge: ", "Resolve: ", "Escalate: "))}
    assert set(urls) == {"Acknowledge", "Resolve", "Escalate"}
    assert urls["Acknowledge"].endswith("?do=ack") and urls["Acknowledge"] in html_part
    token = link_token(urls["Acknowledge"])
    assert {link_token(u) for u in urls.values()} == {token}
    assert f"{BASE_URL}/incidents/{incident_id}" in text

    before = r.state()
    confirm = r.client.get(urls["Acknowledge"].removeprefix(BASE_URL))
    assert confirm.status_code == 200 and "Tap to confirm" in confirm.get_data(as_text=True)
    assert r.state() == before

    done = post(r.client, token, "ack", confirm.get_data(as_text=True), incident_id)
    assert done.status_code == 200
    [ack] = [e for e in r.events(incident_id) if e.kind == "acknowledged"]
    assert ack.actor_user_id == r.ada.id and "via email link" in ack.message
    r.cycle(r.later(11))
    assert r.sms_to(BEN_SMS) == []
    before = r.state()
    assert "already acknowledged" in post(r.client, token, "ack", confirm.get_data(as_text=True),
                                          incident_id).get_data(as_text=True)
    assert r.state() == before


def test_escalate_link_pages_the_next_level_once(responder):
    r = responder
    incident_id = r.alert()
    token = link_token(paged(r))
    html = r.client.get(f"/a/{token}").get_data(as_text=True)
    assert post(r.client, token, "escalate", html, incident_id).status_code == 200
    r.cycle()
    assert len(r.sms_to(BEN_SMS)) == 1
    [event] = [e for e in r.events(incident_id) if e.kind == "escalated"]
    assert event.actor_user_id == r.ada.id and "via SMS link" in event.message
    before = r.state()
    again = post(r.client, token, "escalate", html, incident_id)
    assert "already escalated" in again.get_data(as_text=True)
    assert r.state() == before


def test_unknown_expired_other_incident_and_forged_requests_change_nothing(responder):
    r = responder
    first = r.alert()
    second = r.alert(title="CPU hot on web-2", external_id="cpu-web-2")
    r.cycle()
    texts = r.sms_to(ADA_SMS)
    token_a = next(link_token(t) for t in texts if "Disk full" in t)
    token_b = next(link_token(t) for t in texts if "CPU hot" in t)
    html_a = r.client.get(f"/a/{token_a}").get_data(as_text=True)
    html_b = r.client.get(f"/a/{token_b}").get_data(as_text=True)
    before = r.state()

    # Unknown token: 404 page with a sign-in link, never a 500.
    for path in ("/a/AAAAAAAAAAAAAAAAAAAAAA", "/a/x", "/a/" + "z" * 300, "/a/%00%ff"):
        for response in (r.client.get(path), r.client.post(path, data={"action": "ack"})):
            assert response.status_code == 404, path
            assert "/login" in response.get_data(as_text=True)

    # A link for incident A never acts on B: B's id in A's form, or B's form token with A's link.
    wrong = post(r.client, token_a, "ack", html_a, second)
    assert wrong.status_code == 404
    forged = r.client.post(f"/a/{token_a}", data={"form_token": form_token(html_b), "incident": str(first),
                                                 "action": "ack"})
    assert forged.status_code == 400
    # The bound form token is required: no token, no action (CSRF stays enforced).
    assert r.client.post(f"/a/{token_a}", data={"incident": str(first), "action": "ack"}).status_code == 400
    assert post(r.client, token_a, "reboot", html_a, first).status_code == 409
    assert {k: v for k, v in r.state().items() if k != "links"} == \
        {k: v for k, v in before.items() if k != "links"}
    assert r.incident(first).status == r.incident(second).status == "triggered"

    # Expired: 410 with the sign-in link.
    r.read(lambda s: (s.execute(update(ActionLink).values(expires_at=utcnow() - timedelta(seconds=1))),
                      s.commit()))
    for response in (r.client.get(f"/a/{token_a}"), post(r.client, token_a, "ack", html_a, first)):
        assert response.status_code == 410 and "/login" in response.get_data(as_text=True)
    assert r.incident(first).status == "triggered"


def test_deactivated_user_and_rotated_secret_void_links(responder, make_app):
    r = responder
    incident_id = r.alert()
    token = link_token(paged(r))
    html = r.client.get(f"/a/{token}").get_data(as_text=True)

    # SECRET_KEY-derived signing material rotated: the same token is unknown to that app.
    rotated = make_app(PAGERPAL_BASE_URL=BASE_URL, SECRET_KEY="another-secret-key-that-is-long-enough-987654")
    assert rotated.test_client().get(f"/a/{token}").status_code == 404
    assert rotated.test_client().post(f"/a/{token}", data={"form_token": form_token(html),
                                                         "incident": str(incident_id),
                                                         "action": "ack"}).status_code == 404

    def deactivate(s):
        deactivate_user(s, s.get(User, r.ada.id))
        s.commit()
    r.read(deactivate)
    assert r.client.get(f"/a/{token}").status_code == 410
    assert post(r.client, token, "ack", html, incident_id).status_code == 410
    assert r.incident(incident_id).status == "triggered"


def test_guessing_tokens_is_rate_limited_per_address(responder):
    r = responder
    r.alert()
    token = link_token(paged(r))
    assert r.client.get(f"/a/{token}").status_code == 200
    # MAX_MISSES (20) misses are answered 404; the one past them blocks the address.
    codes = [r.client.get(f"/a/{'G' * 21}{i % 10}").status_code for i in range(22)]
    assert codes[:21] == [404] * 21 and codes[21] == 429
    blocked = r.client.get(f"/a/{token}")
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    # Another address is not blocked.
    other = r.client.get(f"/a/{token}", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200


# --- the core service with an injected clock ---------------------------------------------------

def signing(**extra) -> LinkSigning:
    return LinkSigning.from_settings(Settings.from_env(environ={}, overrides={
        "SECRET_KEY": SECRET, "DATABASE_URL": "sqlite:///:memory:", **extra}))


def test_link_expires_after_its_ttl(responder):
    r = responder
    incident_id = r.alert()
    token = link_token(paged(r))
    link = r.read(lambda s: load_link(s, token, signing=signing(), now=utcnow()))
    assert timedelta(seconds=86390) < link.expires_at - link.created_at <= timedelta(seconds=86400)
    with pytest.raises(LinkGone):
        r.read(lambda s: load_link(s, token, signing=signing(), now=link.expires_at))
    with pytest.raises(NotFound):
        r.read(lambda s: load_link(s, token, signing=signing(SECRET_KEY="x" * 40), now=utcnow()))
    with pytest.raises(LinkGone):
        r.read(lambda s: perform_link_action(s, token, "ack", signing=signing(), now=link.expires_at,
                                             base_url=BASE_URL))
    assert r.incident(incident_id).status == "triggered"


def test_only_the_hash_of_a_token_is_stored(responder):
    r = responder
    incident_id = r.alert()
    r.cycle()
    tokens = {link_token(t) for t in r.sms_to(ADA_SMS)}
    stored = r.read(lambda s: [(link.token_hash, link.channel, link.user_id, link.incident_id)
                               for link in s.query(ActionLink).order_by(ActionLink.id)])
    assert {channel for _, channel, _, _ in stored} == {"sms", "whatsapp", "email"}
    assert all(user_id == r.ada.id and inc == incident_id for _, _, user_id, inc in stored)
    assert not tokens & {h for h, _, _, _ in stored}
    assert signing().token_hash(tokens.pop()) in {h for h, _, _, _ in stored}


def test_a_page_the_worker_writes_carries_a_link_the_web_accepts(responder):
    """Level 2 is paged by the worker's escalation step: its link is signed with the same SECRET_KEY."""
    r = responder
    incident_id = r.alert()
    r.cycle()
    r.cycle(r.later(11))
    [sms] = r.sms_to(BEN_SMS)
    token = link_token(sms)
    html = r.client.get(f"/a/{token}").get_data(as_text=True)
    assert "Acting as <strong>Ben Okri</strong>" in html
    assert post(r.client, token, "ack", html, incident_id).status_code == 200
    incident = r.incident(incident_id)
    assert incident.status == "acknowledged" and incident.acknowledged_by_id == r.ben.id
