"""Refused webhook requests count against the rate limit (finding 9).

Before: invalid bodies and unauthenticated calls never spent a token, and the PagerDuty
endpoint decoded and parsed the body before authenticating.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from pagerpal_core.models import AlertSource, Incident
from pagerpal_core.services.alert_sources import create_alert_source, deactivate_alert_source
from pagerpal_core.services.refused_requests import UNAUTHENTICATED_BURST
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from tests.ingestion import samples


@pytest.fixture
def tight_app(make_app):
    """Two tokens per source, refilled far slower than a test runs."""
    return make_app(ALERT_SOURCE_RATE_LIMIT_CAPACITY="2", ALERT_SOURCE_RATE_LIMIT_REFILL_PER_SECOND="0.001")


def add_source(app, name="mon", **kwargs) -> str:
    with app.app_context():
        issued = create_alert_source(db.session, name=name, now=utcnow(), **kwargs)
        db.session.commit()
        return issued.key


def incidents(app) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Incident))
        db.session.remove()
        return count


def alert(client, key, title="disk full", address="203.0.113.5", **extra):
    return client.post("/api/v1/alerts", data=json.dumps({"title": title, **extra}),
                       headers={"X-API-Key": key, "Content-Type": "application/json"},
                       environ_base={"REMOTE_ADDR": address})


def test_invalid_bodies_spend_the_sources_tokens(tight_app):
    client = tight_app.test_client()
    key = add_source(tight_app)
    bad_json = client.post("/api/v1/alerts", data=b"{not json", headers={"X-API-Key": key},
                           content_type="application/json")
    assert bad_json.status_code == 400
    assert alert(client, key, title="").status_code == 422
    limited = alert(client, key)  # both tokens went to the refused requests
    assert limited.status_code == 429 and limited.headers["Retry-After"]
    assert incidents(tight_app) == 0
    # Once the bucket is empty a refused body is answered 429 too (it still costs the server work).
    assert client.post("/api/v1/alerts", data=b"{", headers={"X-API-Key": key},
                       content_type="application/json").status_code == 429


def test_a_bad_sns_signature_spends_a_token(tight_app):
    client = tight_app.test_client()
    key = add_source(tight_app, kind="cloudwatch")  # verify (the default for new sources)
    unsigned = samples.sns_notification()
    del unsigned["Signature"]
    for _ in range(2):
        response = client.post("/api/v1/webhooks/cloudwatch", data=json.dumps(unsigned),
                               headers={"X-API-Key": key}, content_type="text/plain")
        assert response.status_code == 403
    assert client.post("/api/v1/webhooks/cloudwatch", data=json.dumps(unsigned),
                       headers={"X-API-Key": key}, content_type="text/plain").status_code == 429


def test_unauthenticated_calls_are_counted_per_address(app, client):
    key = add_source(app)
    attacker = "198.51.100.9"
    statuses = [alert(client, f"ppk_guess{i}", address=attacker).status_code for i in range(UNAUTHENTICATED_BURST)]
    assert set(statuses) == {401}
    over = alert(client, "ppk_guess-more", address=attacker)
    assert over.status_code == 429 and over.headers["Retry-After"]
    no_key = client.post("/api/v1/alerts", data="{}", content_type="application/json",
                         environ_base={"REMOTE_ADDR": attacker})
    assert no_key.status_code == 429
    # A valid key from that address is still accepted; another address still gets its 401.
    assert alert(client, key, address=attacker).status_code == 201
    assert alert(client, "ppk_guess", address="192.0.2.44").status_code == 401
    assert incidents(app) == 1


def test_inactive_source_refusals_are_counted_per_address(app, client):
    key = add_source(app)
    with app.app_context():
        deactivate_alert_source(db.session, db.session.scalar(select(AlertSource)), now=utcnow())
        db.session.commit()
    statuses = [alert(client, key, address="198.51.100.10").status_code for _ in range(UNAUTHENTICATED_BURST + 1)]
    assert statuses[:-1] == [403] * UNAUTHENTICATED_BURST and statuses[-1] == 429


def test_pagerduty_authenticates_before_parsing(tight_app):
    client = tight_app.test_client()
    key = add_source(tight_app, kind="pagerduty")
    path = "/api/v1/webhooks/pagerduty"
    # A wrong header key with a broken body: 401 (it used to be a 400 from the parser).
    wrong = client.post(path, data=b"{broken", headers={"X-API-Key": "ppk_wrong"}, content_type="application/json")
    assert wrong.status_code == 401
    # No key anywhere readable: 401, not a parse error.
    unreadable = client.post(path, data=b"{broken", content_type="application/json")
    assert unreadable.status_code == 401
    # The routing_key in the body still authenticates; a refused event spends the token.
    refused = client.post(path, json={"routing_key": key, "event_action": "explode"})
    assert refused.status_code == 400 and refused.get_json()["status"] == "invalid event"
    ok = client.post(path, json=samples.pagerduty_event(routing_key=key))
    assert ok.status_code == 202
    limited = client.post(path, json=samples.pagerduty_event(routing_key=key, dedup_key="other"))
    assert limited.status_code == 429
    # With the key in a header the body is never read before authentication.
    assert client.post(path, data=b"{broken", headers={"X-API-Key": key},
                       content_type="application/json").status_code == 429
