"""The ingestion endpoints end to end through the app, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
import logging

import pytest

from tests.ingestion import samples
from tests.ingestion.conftest import post

# --- generic: open, dedup, recover, reopen ----------------------------------------------

def test_generic_lifecycle(client, source, incidents, timeline, row_counts):
    alert = {"title": "Disk full on db-1", "external_id": "disk-db-1", "severity": "critical",
             "details": {"host": "db-1"}, "links": ["https://runbooks.example.test/disk"]}
    created = post(client, "/api/v1/alerts", alert, source.key)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["outcome"] == "created" and body["external_id"] == "disk-db-1"
    incident_id = body["incident_id"]
    pages_after_create = row_counts()["notifications"]

    repeat = post(client, "/api/v1/alerts", alert, source.key)
    assert repeat.status_code == 200
    assert repeat.get_json()["outcome"] == "repeated"
    assert repeat.get_json()["incident_id"] == incident_id
    assert repeat.get_json()["occurrence_count"] == 2
    post(client, "/api/v1/alerts", alert, source.key)
    assert row_counts()["notifications"] == pages_after_create  # a repeat pages no one

    [incident] = incidents()
    assert (incident.status, incident.severity, incident.occurrence_count) == ("triggered", "critical", 3)
    assert incident.details == {"host": "db-1"}
    assert incident.links[0]["href"] == "https://runbooks.example.test/disk"
    kinds = [kind for kind, _, _ in timeline(incident_id)]
    assert kinds.count("repeated") == 1  # the first repeat only
    triggered = next(detail for kind, _, detail in timeline(incident_id) if kind == "triggered")
    assert triggered["payload"]["title"] == "Disk full on db-1"  # raw payload on the timeline

    resolved = post(client, "/api/v1/alerts", dict(alert, status="resolved"), source.key)
    assert resolved.status_code == 200 and resolved.get_json()["outcome"] == "resolved"
    again = post(client, "/api/v1/alerts", dict(alert, status="resolved"), source.key)
    assert again.status_code == 200
    assert again.get_json()["outcome"] == "not_open"
    assert "already resolved" in again.get_json()["message"]
    assert [i.status for i in incidents()] == ["resolved"]
    kinds = [kind for kind, _, _ in timeline(incident_id)]
    assert kinds.count("resolved") == 1 and "alert_recovered" in kinds

    reopened = post(client, "/api/v1/alerts", alert, source.key)
    assert reopened.status_code == 201 and reopened.get_json()["incident_id"] != incident_id
    assert [i.status for i in incidents()] == ["resolved", "triggered"]


def test_unmatched_recovery_is_a_no_op_that_says_so(client, source, row_counts):
    before = row_counts()
    response = post(client, "/api/v1/alerts", {"title": "never fired", "status": "resolved"}, source.key)
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "not_open"
    assert "nothing to resolve" in response.get_json()["message"]
    assert row_counts() == before


def test_alert_storm_is_summarised_not_logged_per_repeat(client, source, incidents, timeline):
    alert = {"title": "flapping", "external_id": "flap"}
    for _ in range(12):
        post(client, "/api/v1/alerts", alert, source.key)
    [incident] = incidents()
    assert incident.occurrence_count == 12 and incident.repeats_unlogged == 2
    kinds = [kind for kind, _, _ in timeline(incident.id)]
    # Routing may add its own rows after "triggered"; the repeats wrote exactly two.
    assert kinds[0] == "triggered"
    assert [k for k in kinds if k.startswith("repeat")] == ["repeated", "repeats_summarised"]
    summary = next(detail for kind, _, detail in timeline(incident.id) if kind == "repeats_summarised")
    assert summary["repeats"] == 8 and summary["occurrence_count"] == 10
    post(client, "/api/v1/alerts", dict(alert, status="resolved"), source.key)
    summaries = [detail for kind, _, detail in timeline(incident.id) if kind == "repeats_summarised"]
    assert summaries[-1]["repeats"] == 2  # the rest is written before the resolve
    assert incidents()[0].repeats_unlogged == 0


def test_long_title_truncated_and_large_payload_bounded_on_timeline(client, source, incidents, timeline):
    alert = {"title": "t" * 2000, "details": {"blob": "x" * 30_000}}
    assert post(client, "/api/v1/alerts", alert, source.key).status_code == 201
    [incident] = incidents()
    assert len(incident.title) == 500
    triggered = next(detail for kind, _, detail in timeline(incident.id) if kind == "triggered")
    assert triggered.get("truncated") is True and len(json.dumps(triggered)) < 20_000


def test_severity_map(client, make_source, incidents):
    src = make_source(name="mapped", severity_map={"P0": "critical", "*": "warning"})
    post(client, "/api/v1/alerts", {"title": "a", "severity": "p0"}, src.key)
    post(client, "/api/v1/alerts", {"title": "b", "severity": "whatever"}, src.key)
    post(client, "/api/v1/alerts", {"title": "c", "severity": "info"}, src.key)
    post(client, "/api/v1/alerts", {"title": "d"}, src.key)
    assert [i.severity for i in incidents()] == ["critical", "warning", "info", "warning"]


def test_incident_takes_the_sources_team_and_policy(app, client, make_source, incidents):
    from pagerpal_core.models import EscalationPolicy, Team
    from pagerpal_web.extensions import db

    with app.app_context():
        team, policy = Team(name="storage"), EscalationPolicy(name="storage-policy")
        db.session.add_all([team, policy])
        db.session.commit()
        team_id, policy_id = team.id, policy.id
    src = make_source(name="routed", team_id=team_id, policy_id=policy_id)
    assert post(client, "/api/v1/alerts", {"title": "x"}, src.key).status_code == 201
    [incident] = incidents()
    assert (incident.team_id, incident.policy_id) == (team_id, policy_id)


# --- authentication -------------------------------------------------------------------

def test_every_auth_method_works(client, source, incidents):
    for how in ("header", "bearer", "basic", "query"):
        response = post(client, "/api/v1/alerts", {"title": f"via {how}"}, source.key, how=how)
        assert response.status_code == 201, (how, response.get_json())
    assert [i.alert_source_id for i in incidents()] == [source.id] * 4


def test_query_string_key_logs_a_warning_without_the_key(client, source, caplog):
    caplog.set_level(logging.INFO)
    post(client, "/api/v1/alerts", {"title": "via query"}, source.key, how="query")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "query string" in r.getMessage()]
    assert warnings
    assert source.key not in caplog.text
    assert all(source.key not in json.dumps(getattr(r, "fields", {})) for r in caplog.records)


def test_basic_auth_key_as_username_works(client, source):
    import base64
    token = base64.b64encode(f"{source.key}:".encode()).decode()
    response = client.post("/api/v1/alerts", json={"title": "x"}, headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 201


def test_missing_or_unknown_key_is_401_and_writes_nothing(client, source, row_counts):
    before = row_counts()
    for key in (None, "ppk_" + "A" * 43, "not-a-key", "ppk_", source.key[:-1]):
        response = post(client, "/api/v1/alerts", {"title": "x"}, key)
        assert response.status_code == 401, key
        error = response.get_json()["error"]
        assert error["code"] == "unauthorized"
        assert "exist" not in error["message"] and "monitoring" not in error["message"]
    assert row_counts() == before


def test_unknown_key_and_no_key_do_not_reveal_sources(client, source):
    unknown = post(client, "/api/v1/alerts", {"title": "x"}, "ppk_" + "B" * 43).get_json()
    other = post(client, "/api/v1/alerts", {"title": "x"}, "ppk_" + "C" * 43).get_json()
    assert unknown == other


def test_inactive_source_is_403(app, client, source, row_counts):
    from pagerpal_core.services.alert_sources import deactivate_alert_source, get_alert_source
    from pagerpal_core.timeutil import utcnow
    from pagerpal_web.extensions import db

    with app.app_context():
        deactivate_alert_source(db.session, get_alert_source(db.session, source.id), now=utcnow())
        db.session.commit()
    before = row_counts()
    response = post(client, "/api/v1/alerts", {"title": "x"}, source.key)
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert row_counts() == before


def test_key_never_echoed_in_error_responses(client, source):
    for response in (post(client, "/api/v1/alerts", {"nope": 1}, source.key),
                     post(client, "/api/v1/alerts", None, source.key, raw=b"{bad"),
                     post(client, "/api/v1/webhooks/pagerduty", {"routing_key": source.key}),
                     post(client, "/api/v1/webhooks/pagerduty", {"routing_key": source.key + "x",
                                                                 "event_action": "trigger"})):
        assert source.key not in response.get_data(as_text=True)


# --- bad input: a clear 4xx, nothing written --------------------------------------------

BAD_INPUTS = [
    ("/api/v1/alerts", b"{not json", 400, None),
    ("/api/v1/alerts", b"", 400, None),
    ("/api/v1/alerts", b"[1, 2]", 422, None),
    ("/api/v1/alerts", b"\xff\xfe garbage", 400, None),
    ("/api/v1/alerts", b"[" * 100_000 + b"]" * 100_000, 400, None),
    ("/api/v1/alerts", json.dumps({"severity": "high"}).encode(), 422, "title"),
    ("/api/v1/alerts", json.dumps({"title": 42.5, "status": "exploded"}).encode(), 422, "status"),
    ("/api/v1/alerts", json.dumps({"title": "x", "details": [1]}).encode(), 422, "details"),
    ("/api/v1/alerts", json.dumps({"title": "x", "details": {"k": "v" * 50_000}}).encode(), 422, "details"),
    ("/api/v1/webhooks/grafana", json.dumps({"receiver": "x"}).encode(), 422, "alerts"),
    ("/api/v1/webhooks/grafana", json.dumps(dict(copy.deepcopy(samples.GRAFANA_UNIFIED), alerts=[
        samples.GRAFANA_UNIFIED["alerts"][0], dict(samples.GRAFANA_UNIFIED["alerts"][1], status="weird")])).encode(),
     422, "alerts[1].status"),
    ("/api/v1/webhooks/alertmanager", json.dumps(dict(samples.ALERTMANAGER, alerts=[
        dict(samples.ALERTMANAGER["alerts"][0], labels={f"l{i}": "v" * 200 for i in range(200)})])).encode(),
     422, "alerts[0].labels"),
    ("/api/v1/webhooks/cloudwatch", json.dumps(dict(samples.sns_notification(), Type="Nope")).encode(), 422, "Type"),
    ("/api/v1/webhooks/cloudwatch",
     json.dumps(samples.sns_subscription_confirmation("https://evil.example.test/confirm")).encode(),
     422, "SubscribeURL"),
    ("/api/v1/webhooks/cloudwatch",
     json.dumps(samples.sns_subscription_confirmation(
         "https://sns.eu-west-1.amazonaws.com.evil.example.test/?Action=ConfirmSubscription")).encode(),
     422, "SubscribeURL"),
    ("/api/v1/webhooks/cloudwatch",
     json.dumps(samples.sns_subscription_confirmation(
         "http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription")).encode(), 422, "SubscribeURL"),
    ("/api/v1/webhooks/cloudwatch",
     json.dumps(samples.sns_subscription_confirmation(
         "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription")).encode(), 422, "SubscribeURL"),
]


def test_bad_input_is_4xx_json_and_writes_nothing(client, source, row_counts):
    # One database for all cases (each case is checked on its own; the message says which).
    before = row_counts()
    for i, (path, raw, status, field) in enumerate(BAD_INPUTS):
        response = post(client, path, None, source.key, raw=raw, content_type="text/plain")
        case = f"case {i} ({path}): {response.get_data(as_text=True)[:200]}"
        assert response.status_code == status, case
        error = response.get_json()["error"]
        assert error["message"], case
        if field:
            assert field in error["fields"], case
        assert row_counts() == before, case


def test_a_bad_alert_in_a_group_writes_none_of_the_group(client, source, row_counts):
    body = copy.deepcopy(samples.ALERTMANAGER)
    body["alerts"][1]["status"] = "sideways"
    before = row_counts()
    assert post(client, "/api/v1/webhooks/alertmanager", body, source.key).status_code == 422
    assert row_counts() == before


def test_body_over_the_limit_is_413(make_app, make_source, row_counts):
    app = make_app(MAX_REQUEST_BYTES="4096")
    client = app.test_client()
    src = make_source(name="big")
    before = row_counts()
    response = post(client, "/api/v1/alerts", {"title": "x", "description": "y" * 10_000}, src.key)
    assert response.status_code == 413
    assert "larger than" in response.get_json()["error"]["message"]
    assert row_counts() == before


def test_wrong_method_is_405_json(client):
    response = client.get("/api/v1/alerts")
    assert response.status_code == 405 and response.get_json()["error"]


# --- Grafana --------------------------------------------------------------------------

def test_grafana_unified_group_then_partial_recovery(client, make_source, incidents, timeline):
    src = make_source(name="grafana", kind="grafana")
    response = post(client, "/api/v1/webhooks/grafana", samples.GRAFANA_UNIFIED, src.key)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["counts"] == {"created": 2}
    assert sorted(i.external_id for i in incidents()) == ["bc97ff14869b13e3", "c6eadffa33fcdf37"]
    memory = next(i for i in incidents() if i.external_id == "c6eadffa33fcdf37")
    assert memory.severity == "critical"
    assert memory.details["values"]["B"] == pytest.approx(44.239, rel=1e-3)

    again = post(client, "/api/v1/webhooks/grafana", samples.GRAFANA_UNIFIED, src.key).get_json()
    assert again["counts"] == {"repeated": 2}
    resolved = post(client, "/api/v1/webhooks/grafana", samples.grafana_resolved(0), src.key).get_json()
    assert resolved["results"][0]["outcome"] == "resolved"
    assert {i.external_id: i.status for i in incidents()} == {
        "c6eadffa33fcdf37": "resolved", "bc97ff14869b13e3": "triggered"}


def test_grafana_legacy_alerting_then_ok(client, make_source, incidents):
    src = make_source(name="grafana-old", kind="grafana")
    assert post(client, "/api/v1/webhooks/grafana", samples.GRAFANA_LEGACY, src.key).get_json()["counts"] == {
        "created": 1}
    assert post(client, "/api/v1/webhooks/grafana", dict(samples.GRAFANA_LEGACY, state="no_data"),
                src.key).get_json()["counts"] == {"ignored": 1}
    ok = post(client, "/api/v1/webhooks/grafana", dict(samples.GRAFANA_LEGACY, state="ok"), src.key).get_json()
    assert ok["counts"] == {"resolved": 1}
    [incident] = incidents()
    assert (incident.external_id, incident.status, incident.severity) == ("rule:7", "resolved", "warning")


# --- Alertmanager ---------------------------------------------------------------------

def test_alertmanager_group(client, make_source, incidents):
    src = make_source(name="am", kind="alertmanager")
    response = post(client, "/api/v1/webhooks/alertmanager", samples.ALERTMANAGER, src.key)
    assert response.status_code == 200 and response.get_json()["counts"] == {"created": 2}
    body = copy.deepcopy(samples.ALERTMANAGER)
    body["status"] = "resolved"
    for alert in body["alerts"]:
        alert["status"] = "resolved"
    assert post(client, "/api/v1/webhooks/alertmanager", body, src.key).get_json()["counts"] == {"resolved": 2}
    assert post(client, "/api/v1/webhooks/alertmanager", body, src.key).get_json()["counts"] == {"not_open": 2}
    assert {i.status for i in incidents()} == {"resolved"}


# --- CloudWatch via SNS ---------------------------------------------------------------

def test_cloudwatch_alarm_ok_and_insufficient_data(client, make_source, incidents, timeline, row_counts):
    src = make_source(name="aws", kind="cloudwatch", sns_verification="key-only")  # unsigned samples
    before = row_counts()
    ignored = post(client, "/api/v1/webhooks/cloudwatch",
                   samples.sns_notification(samples.cloudwatch_alarm("INSUFFICIENT_DATA")), src.key,
                   how="basic", content_type="text/plain; charset=UTF-8")
    assert ignored.status_code == 200 and ignored.get_json()["counts"] == {"ignored": 1}
    assert row_counts() == before

    alarm = post(client, "/api/v1/webhooks/cloudwatch", samples.sns_notification(), src.key, how="basic",
                 content_type="text/plain; charset=UTF-8")
    assert alarm.get_json()["counts"] == {"created": 1}
    [incident] = incidents()
    assert (incident.external_id, incident.title) == (samples.ALARM_ARN, "cpu-high")
    post(client, "/api/v1/webhooks/cloudwatch",
         samples.sns_notification(samples.cloudwatch_alarm("INSUFFICIENT_DATA", "ALARM")), src.key, how="basic",
         content_type="text/plain")
    assert "alert_state" in [kind for kind, _, _ in timeline(incident.id)]
    ok = post(client, "/api/v1/webhooks/cloudwatch", samples.sns_notification(samples.cloudwatch_alarm("OK")),
              src.key, how="basic", content_type="text/plain")
    assert ok.get_json()["counts"] == {"resolved": 1}
    assert incidents()[0].status == "resolved"


def test_sns_subscription_confirmation_recorded_pending(app, client, make_source, incidents):
    from sqlalchemy import select

    from pagerpal_core.models import SnsSubscription
    from pagerpal_web.extensions import db

    src = make_source(name="aws-sub", kind="cloudwatch", sns_verification="key-only")  # unsigned samples
    response = post(client, "/api/v1/webhooks/cloudwatch", samples.sns_subscription_confirmation(), src.key,
                    how="basic", content_type="text/plain")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["sns"]["status"] == "pending"
    # SNS retries confirmations; a second one updates the same row.
    post(client, "/api/v1/webhooks/cloudwatch", samples.sns_subscription_confirmation(), src.key, how="basic",
         content_type="text/plain")
    with app.app_context():
        [row] = db.session.scalars(select(SnsSubscription)).all()
        assert (row.alert_source_id, row.topic_arn, row.status) == (src.id, samples.TOPIC_ARN, "pending")
        assert row.subscribe_url == samples.SUBSCRIBE_URL
    assert incidents() == []
    unsub = post(client, "/api/v1/webhooks/cloudwatch", samples.sns_unsubscribe_confirmation(), src.key,
                 how="basic", content_type="text/plain")
    assert unsub.status_code == 200
    with app.app_context():
        assert db.session.scalars(select(SnsSubscription.status)).all() == ["unsubscribed"]


# --- PagerDuty Events v2 --------------------------------------------------------------

def test_pagerduty_trigger_ack_resolve(client, make_source, incidents):
    src = make_source(name="pd", kind="pagerduty")
    trigger = post(client, "/api/v1/webhooks/pagerduty", samples.pagerduty_event(routing_key=src.key))
    assert trigger.status_code == 202, trigger.get_json()
    body = trigger.get_json()
    assert (body["status"], body["message"], body["dedup_key"]) == ("success", "Event processed", "srv01/disk")
    [incident] = incidents()
    assert incident.severity == "high"  # PagerDuty's "error"

    ack = post(client, "/api/v1/webhooks/pagerduty/v2/enqueue",
               samples.pagerduty_event("acknowledge", routing_key=src.key))
    assert ack.status_code == 202 and ack.get_json()["outcome"] == "acknowledged"
    assert incidents()[0].status == "acknowledged"
    # Acknowledged is still open: a repeat trigger dedups onto it.
    assert post(client, "/api/v1/webhooks/pagerduty", samples.pagerduty_event(routing_key=src.key)
                ).get_json()["outcome"] == "repeated"
    resolve = post(client, "/api/v1/webhooks/pagerduty", samples.pagerduty_event("resolve", routing_key=src.key))
    assert resolve.status_code == 202 and resolve.get_json()["outcome"] == "resolved"
    again = post(client, "/api/v1/webhooks/pagerduty", samples.pagerduty_event("resolve", routing_key=src.key))
    assert again.status_code == 202 and again.get_json()["outcome"] == "not_open"


def test_pagerduty_trigger_without_dedup_key_returns_one(client, make_source):
    src = make_source(name="pd2", kind="pagerduty")
    first = post(client, "/api/v1/webhooks/pagerduty", samples.pagerduty_event(dedup_key=None), src.key)
    second = post(client, "/api/v1/webhooks/pagerduty", samples.pagerduty_event(dedup_key=None), src.key)
    assert first.get_json()["dedup_key"] == second.get_json()["dedup_key"]
    assert second.get_json()["outcome"] == "repeated"


def test_pagerduty_invalid_event_answers_like_pagerduty(client, make_source, row_counts):
    src = make_source(name="pd3", kind="pagerduty")
    before = row_counts()
    response = post(client, "/api/v1/webhooks/pagerduty",
                    {"routing_key": src.key, "event_action": "trigger", "payload": {"summary": "x"}})
    assert response.status_code == 400
    body = response.get_json()
    assert body["status"] == "invalid event" and body["message"] == "Event object is invalid"
    assert any("payload.source" in e for e in body["errors"])
    assert body["error"]["fields"]["payload.severity"]
    bad_json = post(client, "/api/v1/webhooks/pagerduty", None, src.key, raw=b"{oops")
    assert bad_json.status_code == 400 and bad_json.get_json()["status"] == "invalid event"
    assert post(client, "/api/v1/webhooks/pagerduty", samples.pagerduty_event(
        routing_key="0123456789abcdef0123456789abcdef")).status_code == 401
    assert row_counts() == before


# --- send test alert ------------------------------------------------------------------

def test_send_test_alert_cli(runner, source, incidents):
    result = runner.invoke(args=["pagerpal", "send-test-alert", "--source", source.name])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("created")
    [incident] = incidents()
    assert incident.external_id == "pagerpal-test-alert" and incident.status == "triggered"
    result = runner.invoke(args=["pagerpal", "send-test-alert", "--source", source.name, "--resolve"])
    assert result.exit_code == 0 and result.output.startswith("resolved")
    assert incidents()[0].status == "resolved"
    missing = runner.invoke(args=["pagerpal", "send-test-alert", "--source", "nope"])
    assert missing.exit_code == 1 and "not found" in missing.output


def test_alert_sources_cli_shows_key_once(runner, app):
    created = runner.invoke(args=["pagerpal", "alert-sources", "create", "--name", "cli-src", "--kind", "grafana"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("ppk_") and len(key) >= 40
    listing = runner.invoke(args=["pagerpal", "alert-sources", "list"])
    assert "cli-src" in listing.output and key not in listing.output and f"ppk_…{key[-4:]}" in listing.output
    regenerated = runner.invoke(args=["pagerpal", "alert-sources", "regenerate-key", "--name", "cli-src"])
    new_key = regenerated.output.strip().splitlines()[-1]
    assert new_key.startswith("ppk_") and new_key != key
    client = app.test_client()
    assert post(client, "/api/v1/alerts", {"title": "x"}, key).status_code == 401
    assert post(client, "/api/v1/alerts", {"title": "x"}, new_key).status_code == 201


def test_nul_and_lone_surrogates_are_cleaned_not_refused(client, source, incidents):
    """PostgreSQL cannot store NUL or lone surrogates; the alert is still accepted, cleaned."""
    raw = b'{"title": "disk\\u0000 full \\ud800", "external_id": "nul\\u0000id", "details": {"k\\u0000": "v\\udfff"}}'
    response = post(client, "/api/v1/alerts", None, source.key, raw=raw)
    assert response.status_code == 201, response.get_json()
    [incident] = incidents()
    assert incident.title == "disk\ufffd full \ufffd"
    assert incident.details == {"k\ufffd": "v\ufffd"}
    assert "\x00" not in incident.external_id
