"""Each parser on the payloads its sender really posts: pure functions, no database."""

from __future__ import annotations

import copy
import json

import pytest

from pagerpal_core.errors import Invalid
from pagerpal_core.payloads import PARSERS, parse_payload
from pagerpal_core.payloads.common import ACKNOWLEDGE, IGNORE, MAX_TITLE, RESOLVE, TRIGGER
from tests.ingestion import samples


def test_every_source_kind_has_a_parser():
    from pagerpal_core.models.alert_sources import SOURCE_KINDS

    assert set(PARSERS) == set(SOURCE_KINDS)


# --- generic --------------------------------------------------------------------------

def test_generic_full_alert():
    body = {"title": "Disk full on db-1", "external_id": "disk-db-1", "severity": "critical",
            "description": "/var at 99%", "status": "firing", "details": {"host": "db-1"},
            "links": ["https://runbooks.example.test/disk", {"href": "https://grafana.example.test/d/1",
                                                              "text": "dashboard"}]}
    [event] = parse_payload("generic", body).events
    assert (event.action, event.external_id, event.title, event.severity) == (
        TRIGGER, "disk-db-1", "Disk full on db-1", "critical")
    assert event.details == {"host": "db-1"}
    assert [link["href"] for link in event.links] == ["https://runbooks.example.test/disk",
                                                       "https://grafana.example.test/d/1"]


def test_generic_without_external_id_gets_a_stable_fingerprint():
    a = parse_payload("generic", {"title": "Backup failed"}).events[0]
    b = parse_payload("generic", {"title": "Backup failed", "severity": "info"}).events[0]
    c = parse_payload("generic", {"title": "Backup failed on host 2"}).events[0]
    assert a.external_id == b.external_id != c.external_id
    assert a.action == TRIGGER


@pytest.mark.parametrize("status, action", [("firing", TRIGGER), ("triggered", TRIGGER), ("resolved", RESOLVE),
                                            ("RESOLVED", RESOLVE)])
def test_generic_status_words(status, action):
    assert parse_payload("generic", {"title": "x", "status": status}).events[0].action == action


def test_generic_truncates_long_titles_instead_of_refusing():
    [event] = parse_payload("generic", {"title": "x" * 5000}).events
    assert len(event.title) == MAX_TITLE and event.title.endswith("…")


@pytest.mark.parametrize("body, field", [
    ({}, "title"),
    ({"title": "   "}, "title"),
    ({"title": ["a"]}, "title"),
    ({"title": "x", "status": "exploded"}, "status"),
    ({"title": "x", "details": "not an object"}, "details"),
    ({"title": "x", "details": {"blob": "y" * 40_000}}, "details"),
    ({"title": "x", "links": "https://x"}, "links"),
    ({"title": "x", "links": ["ftp://x"]}, "links[0]"),
    ({"title": "x", "severity": 3.5j if False else {"a": 1}}, "severity"),
    ({"title": "x", "external_id": ""}, "external_id"),
])
def test_generic_bad_input_names_the_field(body, field):
    with pytest.raises(Invalid) as caught:
        parse_payload("generic", body)
    assert field in caught.value.fields


def test_generic_rejects_non_objects():
    with pytest.raises(Invalid):
        parse_payload("generic", ["title"])


# --- Grafana --------------------------------------------------------------------------

def test_grafana_unified_group_gives_one_event_per_alert():
    events = parse_payload("grafana", samples.GRAFANA_UNIFIED).events
    assert [e.external_id for e in events] == ["c6eadffa33fcdf37", "bc97ff14869b13e3"]
    first = events[0]
    assert first.action == TRIGGER
    assert first.title == "High memory usage: This alert was triggered for zone us-1"
    assert first.description == "The system has high memory usage"
    assert first.severity == "critical"
    assert first.details["labels"]["zone"] == "us-1"
    assert first.details["values"] == {"B": 44.23943737541908, "C": 1}
    hrefs = {link["text"]: link["href"] for link in first.links}
    assert hrefs["Source"].endswith("/1afz29v7z/edit")
    assert hrefs["Runbook"] == "https://runbooks.example.test/memory"
    assert "Dashboard" not in hrefs  # empty dashboardURL is not a link
    assert first.raw["fingerprint"] == "c6eadffa33fcdf37"


def test_grafana_unified_resolved_alert():
    [event] = parse_payload("grafana", samples.grafana_resolved(0)).events
    assert (event.action, event.external_id) == (RESOLVE, "c6eadffa33fcdf37")


def test_grafana_mixed_statuses_in_one_group():
    body = copy.deepcopy(samples.GRAFANA_UNIFIED)
    body["alerts"][1]["status"] = "resolved"
    assert [e.action for e in parse_payload("grafana", body).events] == [TRIGGER, RESOLVE]


@pytest.mark.parametrize("state, action", [("alerting", TRIGGER), ("ok", RESOLVE), ("no_data", IGNORE),
                                           ("pending", IGNORE)])
def test_grafana_legacy_states(state, action):
    body = dict(samples.GRAFANA_LEGACY, state=state)
    [event] = parse_payload("grafana", body).events
    assert event.action == action
    assert event.external_id == "rule:7"
    assert event.title == "[Alerting] Test notification"
    assert event.severity == "warning"
    assert event.details["evalMatches"][1]["value"] == 200
    assert {link["text"] for link in event.links} == {"Grafana rule", "Panel image"}


@pytest.mark.parametrize("mutate, field", [
    (lambda b: b.pop("alerts"), "alerts"),
    (lambda b: b.update(alerts=[]), "alerts"),
    (lambda b: b["alerts"][0].update(status="maybe"), "alerts[0].status"),
    (lambda b: b["alerts"][1].update(labels={"big": "x" * 20_000}), "alerts[1].labels"),
    (lambda b: b["alerts"][0].update(labels={"n": 1}), "alerts[0].labels"),
    (lambda b: b["alerts"].append("nope"), "alerts[2]"),
])
def test_grafana_bad_input_names_the_field(mutate, field):
    body = copy.deepcopy(samples.GRAFANA_UNIFIED)
    mutate(body)
    with pytest.raises(Invalid) as caught:
        parse_payload("grafana", body)
    assert field in caught.value.fields


def test_grafana_legacy_unknown_state():
    with pytest.raises(Invalid) as caught:
        parse_payload("grafana", dict(samples.GRAFANA_LEGACY, state="exploded"))
    assert "state" in caught.value.fields


# --- Alertmanager ---------------------------------------------------------------------

def test_alertmanager_v4_group():
    events = parse_payload("alertmanager", samples.ALERTMANAGER).events
    assert [e.external_id for e in events] == ["1a30ba71cca2921f", "7be0c2b1fd4a03e9"]
    assert events[0].title == "ProbeFailure: BlackBox Probe Failure: https://server.example.test"
    assert events[0].severity == "critical"
    assert events[0].details["group"]["groupKey"].startswith("{}/")
    assert events[0].links[0]["text"] == "Source"


def test_alertmanager_without_fingerprint_hashes_the_labels():
    body = copy.deepcopy(samples.ALERTMANAGER)
    for alert in body["alerts"]:
        del alert["fingerprint"]
    a, b = parse_payload("alertmanager", body).events
    again = parse_payload("alertmanager", body).events[0]
    assert a.external_id != b.external_id and a.external_id == again.external_id


def test_alertmanager_wrong_version():
    with pytest.raises(Invalid) as caught:
        parse_payload("alertmanager", dict(samples.ALERTMANAGER, version="3"))
    assert "version" in caught.value.fields


def test_alertmanager_too_many_alerts():
    body = copy.deepcopy(samples.ALERTMANAGER)
    body["alerts"] = body["alerts"] * 300
    with pytest.raises(Invalid) as caught:
        parse_payload("alertmanager", body)
    assert "alerts" in caught.value.fields


# --- CloudWatch via SNS ---------------------------------------------------------------

@pytest.mark.parametrize("state, action", [("ALARM", TRIGGER), ("OK", RESOLVE), ("INSUFFICIENT_DATA", IGNORE)])
def test_cloudwatch_notification(state, action):
    [event] = parse_payload("cloudwatch", samples.sns_notification(samples.cloudwatch_alarm(state))).events
    assert event.action == action
    assert event.external_id == samples.ALARM_ARN
    assert event.title == "cpu-high"
    assert "Threshold Crossed" in event.description
    assert event.details["trigger"]["MetricName"] == "CPUUtilization"
    assert event.details["sns"]["TopicArn"] == samples.TOPIC_ARN
    assert event.raw["Message"]["NewStateValue"] == state


def test_cloudwatch_alarm_without_arn_uses_its_name():
    alarm = samples.cloudwatch_alarm()
    del alarm["AlarmArn"]
    [event] = parse_payload("cloudwatch", samples.sns_notification(alarm)).events
    assert event.external_id == "alarm:cpu-high"


def test_cloudwatch_raw_message_delivery():
    [event] = parse_payload("cloudwatch", samples.cloudwatch_alarm("OK")).events
    assert (event.action, event.external_id) == (RESOLVE, samples.ALARM_ARN)


def test_sns_subscription_confirmation_is_a_control_message():
    parsed = parse_payload("cloudwatch", samples.sns_subscription_confirmation())
    assert parsed.events == []
    assert parsed.control.type == "SubscriptionConfirmation"
    assert parsed.control.topic_arn == samples.TOPIC_ARN
    assert parsed.control.subscribe_url == samples.SUBSCRIBE_URL


def test_sns_unsubscribe_confirmation():
    parsed = parse_payload("cloudwatch", samples.sns_unsubscribe_confirmation())
    assert parsed.control.type == "UnsubscribeConfirmation"


def test_sns_plain_text_message_still_alerts():
    body = samples.sns_notification(message="Nightly batch failed\nsee logs")
    body["Subject"] = "Batch failure"
    [event] = parse_payload("cloudwatch", body).events
    assert (event.action, event.title) == (TRIGGER, "Batch failure")


@pytest.mark.parametrize("mutate, field", [
    (lambda b: b.update(Type="Surprise"), "Type"),
    (lambda b: b.pop("Message"), "Message"),
    (lambda b: b.update(Message=json.dumps(dict(samples.cloudwatch_alarm(), NewStateValue="MELTING"))),
     "Message.NewStateValue"),
    (lambda b: b.pop("TopicArn"), "TopicArn"),
])
def test_cloudwatch_bad_input_names_the_field(mutate, field):
    body = samples.sns_notification()
    mutate(body)
    with pytest.raises(Invalid) as caught:
        parse_payload("cloudwatch", body)
    assert field in caught.value.fields


# --- PagerDuty Events v2 --------------------------------------------------------------

def test_pagerduty_trigger():
    [event] = parse_payload("pagerduty", samples.pagerduty_event(routing_key="ppk_secret")).events
    assert (event.action, event.external_id, event.severity) == (TRIGGER, "srv01/disk", "error")
    assert event.title == "Disk full on srv01: /var at 98%"
    assert event.details["custom_details"] == {"free_space": "1%", "mount": "/var"}
    assert event.details["component"] == "disk"
    assert {link["text"] for link in event.links} >= {"Runbook", "Monitoring Service", "Disk graph"}
    assert "routing_key" not in event.raw  # the key is never kept


@pytest.mark.parametrize("action, expected", [("acknowledge", ACKNOWLEDGE), ("resolve", RESOLVE)])
def test_pagerduty_ack_and_resolve_need_only_the_dedup_key(action, expected):
    [event] = parse_payload("pagerduty", samples.pagerduty_event(action, routing_key="ppk_x")).events
    assert (event.action, event.external_id) == (expected, "srv01/disk")
    assert "routing_key" not in event.raw


def test_pagerduty_trigger_without_dedup_key_gets_a_stable_one():
    a = parse_payload("pagerduty", samples.pagerduty_event(dedup_key=None)).events[0]
    b = parse_payload("pagerduty", samples.pagerduty_event(dedup_key=None)).events[0]
    assert a.external_id == b.external_id


@pytest.mark.parametrize("body, field", [
    ({"event_action": "explode", "dedup_key": "x"}, "event_action"),
    ({"event_action": "resolve"}, "dedup_key"),
    ({"event_action": "trigger", "payload": {"summary": "x", "source": "y"}}, "payload.severity"),
    ({"event_action": "trigger", "payload": {"summary": "x", "source": "y", "severity": "bad"}},
     "payload.severity"),
    ({"event_action": "trigger"}, "payload"),
])
def test_pagerduty_invalid_events(body, field):
    with pytest.raises(Invalid) as caught:
        parse_payload("pagerduty", body)
    assert field in caught.value.fields
