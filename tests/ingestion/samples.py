"""Payloads in the shapes the senders really post (from their documentation and examples)."""

from __future__ import annotations

import copy
import json

GRAFANA_UNIFIED = {
    "receiver": "PagerPal",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1", "severity": "critical"},
            "annotations": {"description": "The system has high memory usage",
                            "runbook_url": "https://runbooks.example.test/memory",
                            "summary": "This alert was triggered for zone us-1"},
            "startsAt": "2021-10-12T09:51:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://grafana.example.test/alerting/1afz29v7z/edit",
            "fingerprint": "c6eadffa33fcdf37",
            "silenceURL": "https://grafana.example.test/alerting/silence/new?matchers=alertname%3DT2",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
        },
        {
            "status": "firing",
            "labels": {"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"},
            "annotations": {"description": "The system has high CPU usage",
                            "runbook_url": "https://runbooks.example.test/cpu",
                            "summary": "This alert was triggered for zone eu-1"},
            "startsAt": "2021-10-12T09:56:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://grafana.example.test/alerting/d1rdpdv7k/edit",
            "fingerprint": "bc97ff14869b13e3",
            "silenceURL": "https://grafana.example.test/alerting/silence/new?matchers=alertname%3DT1",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 82.2, "C": 1},
        },
    ],
    "groupLabels": {},
    "commonLabels": {"team": "blue"},
    "commonAnnotations": {},
    "externalURL": "https://grafana.example.test/",
    "version": "1",
    "groupKey": "{}:{}",
    "truncatedAlerts": 0,
    "title": "[FIRING:2]  (blue)",
    "state": "alerting",
    "message": "**Firing**\n\nLabels:\n - alertname = T2\n",
}


def grafana_resolved(index: int = 0) -> dict:
    body = copy.deepcopy(GRAFANA_UNIFIED)
    alert = body["alerts"][index]
    alert["status"] = "resolved"
    alert["endsAt"] = "2021-10-12T10:01:03.157076+02:00"
    body["alerts"] = [alert]
    body["status"] = "resolved"
    return body


GRAFANA_LEGACY = {
    "dashboardId": 1,
    "evalMatches": [{"value": 100, "metric": "High value", "tags": None},
                    {"value": 200, "metric": "Higher Value", "tags": None}],
    "imageUrl": "https://grafana.example.test/render/panel.png",
    "message": "Someone is testing the alert notification within Grafana.",
    "orgId": 0,
    "panelId": 1,
    "ruleId": 7,
    "ruleName": "Test notification",
    "ruleUrl": "https://grafana.example.test/d/abc/dash?panelId=1",
    "state": "alerting",
    "tags": {"severity": "warning"},
    "title": "[Alerting] Test notification",
}

ALERTMANAGER = {
    "receiver": "pagerpal",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "ProbeFailure", "instance": "https://server.example.test",
                       "job": "http_checks", "monitor": "master", "severity": "critical"},
            "annotations": {"description": "Instance https://server.example.test has been down for over 5m.",
                            "summary": "BlackBox Probe Failure: https://server.example.test"},
            "startsAt": "2023-02-06T13:08:45.828Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.test:9090/graph?g0.expr=probe_success+%3D%3D+0",
            "fingerprint": "1a30ba71cca2921f",
        },
        {
            "status": "firing",
            "labels": {"alertname": "ProbeFailure", "instance": "https://api.example.test",
                       "job": "http_checks", "monitor": "master", "severity": "critical"},
            "annotations": {"description": "Instance https://api.example.test has been down for over 5m.",
                            "summary": "BlackBox Probe Failure: https://api.example.test"},
            "startsAt": "2023-02-06T13:09:45.828Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.test:9090/graph?g0.expr=probe_success+%3D%3D+0",
            "fingerprint": "7be0c2b1fd4a03e9",
        },
    ],
    "groupLabels": {"alertname": "ProbeFailure"},
    "commonLabels": {"alertname": "ProbeFailure", "job": "http_checks", "monitor": "master",
                     "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager.example.test:9093",
    "version": "4",
    "groupKey": "{}/{severity=\"critical\"}:{alertname=\"ProbeFailure\"}",
    "truncatedAlerts": 0,
}

TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:cloudwatch-alarms"
ALARM_ARN = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:cpu-high"


def cloudwatch_alarm(state: str = "ALARM", old: str = "OK") -> dict:
    return {
        "AlarmName": "cpu-high",
        "AlarmDescription": "CPU above 90% on the web fleet",
        "AWSAccountId": "123456789012",
        "NewStateValue": state,
        "NewStateReason": "Threshold Crossed: 1 out of the last 1 datapoints [97.1 (12/01/24 16:30:00)] "
                          "was greater than the threshold (90.0).",
        "StateChangeTime": "2024-01-12T16:30:42.236+0000",
        "Region": "EU (Ireland)",
        "AlarmArn": ALARM_ARN,
        "OldStateValue": old,
        "Trigger": {"MetricName": "CPUUtilization", "Namespace": "AWS/EC2", "StatisticType": "Statistic",
                    "Statistic": "AVERAGE", "Unit": None,
                    "Dimensions": [{"value": "i-0123456789abcdef0", "name": "InstanceId"}],
                    "Period": 300, "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold",
                    "Threshold": 90.0, "TreatMissingData": "missing", "EvaluateLowSampleCountPercentile": ""},
    }


def sns_notification(alarm: dict | None = None, *, message: str | None = None) -> dict:
    alarm = alarm if alarm is not None else cloudwatch_alarm()
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC_ARN,
        "Subject": f"{alarm.get('NewStateValue', 'ALARM')}: \"cpu-high\" in EU (Ireland)",
        "Message": message if message is not None else json.dumps(alarm),
        "Timestamp": "2024-01-12T16:30:42.276Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6"
                     "bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
                          + TOPIC_ARN + ":2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
    }


SUBSCRIBE_URL = ("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + TOPIC_ARN
                 + "&Token=2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3"
                   "beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7")


def sns_subscription_confirmation(subscribe_url: str = SUBSCRIBE_URL) -> dict:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3",
        "TopicArn": TOPIC_ARN,
        "Message": f"You have chosen to subscribe to the topic {TOPIC_ARN}.\n"
                   "To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": subscribe_url,
        "Timestamp": "2024-01-12T16:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+==",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000.pem",
    }


def sns_unsubscribe_confirmation() -> dict:
    body = sns_subscription_confirmation()
    body["Type"] = "UnsubscribeConfirmation"
    body["Message"] = f"You have chosen to deactivate subscription to {TOPIC_ARN}."
    return body


def pagerduty_event(action: str = "trigger", dedup_key: str | None = "srv01/disk",
                    routing_key: str | None = None) -> dict:
    body = {"event_action": action}
    if dedup_key is not None:
        body["dedup_key"] = dedup_key
    if routing_key is not None:
        body["routing_key"] = routing_key
    if action == "trigger":
        body.update({
            "payload": {"summary": "Disk full on srv01: /var at 98%", "source": "srv01.example.test",
                        "severity": "error", "timestamp": "2024-01-12T16:30:42.000+0000",
                        "component": "disk", "group": "prod-storage", "class": "disk usage",
                        "custom_details": {"free_space": "1%", "mount": "/var"}},
            "links": [{"href": "https://runbooks.example.test/disk", "text": "Runbook"}],
            "images": [{"src": "https://graphs.example.test/disk.png", "href": "https://graphs.example.test/d",
                        "alt": "Disk graph"}],
            "client": "Monitoring Service",
            "client_url": "https://monitoring.example.test",
        })
    return body
