"""CloudWatch alarms delivered by Amazon SNS over HTTP(S).

SNS posts a JSON envelope with `Content-Type: text/plain`:

    {"Type": "Notification", "MessageId": "...", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:alarms",
     "Subject": "ALARM: \"cpu-high\" in EU (Ireland)", "Message": "<the alarm as a JSON string>",
     "Timestamp": "...", "SignatureVersion": "1", "Signature": "...", "SigningCertURL": "...",
     "UnsubscribeURL": "..."}

The alarm inside `Message`:

    {"AlarmName": "cpu-high", "AlarmDescription": "...", "AWSAccountId": "123456789012",
     "NewStateValue": "ALARM", "NewStateReason": "Threshold Crossed: ...", "StateChangeTime": "...",
     "Region": "EU (Ireland)", "AlarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:cpu-high",
     "OldStateValue": "OK", "Trigger": {"MetricName": ..., "Namespace": ..., "Dimensions": [...], ...}}

`ALARM` triggers, `OK` resolves, `INSUFFICIENT_DATA` is recorded and otherwise ignored.
The alarm ARN (else its name) is the external id. `SubscriptionConfirmation` and
`UnsubscribeConfirmation` envelopes come back as an `SnsControl`; a topic that publishes
plain text (not a CloudWatch alarm) becomes an alert titled by its Subject. A body that
is the alarm itself (SNS "raw message delivery") is accepted too.
"""

from __future__ import annotations

import json

from pagerpal_core.payloads import common as p

ALARM_STATES = {"ALARM": p.TRIGGER, "OK": p.RESOLVE, "INSUFFICIENT_DATA": p.IGNORE}
CONTROL_TYPES = ("SubscriptionConfirmation", "UnsubscribeConfirmation")
MAX_MESSAGE_BYTES = 262_144  # SNS's own limit on a message


def parse(body) -> p.ParsedPayload:
    """Events (or a control message) from an SNS HTTP body carrying CloudWatch alarms."""
    body = p.require_object(body)
    kind = body.get("Type")
    if kind is None and "AlarmName" in body:
        return p.ParsedPayload(events=[parse_alarm(body, envelope={})])
    f = p.Fields()
    kind = f.string(body, "Type", "Type", required=True)
    topic_arn = f.string(body, "TopicArn", "TopicArn", required=True)
    message_id = f.string(body, "MessageId", "MessageId")
    if kind is not None and kind not in CONTROL_TYPES + ("Notification",):
        f.add("Type", "must be Notification, SubscriptionConfirmation or UnsubscribeConfirmation")
    if kind in CONTROL_TYPES:
        subscribe_url = f.string(body, "SubscribeURL", "SubscribeURL",
                                 required=kind == "SubscriptionConfirmation")
        f.raise_if_any("invalid SNS message")
        return p.ParsedPayload(control=p.SnsControl(type=kind, topic_arn=topic_arn.strip(),
                                                    subscribe_url=subscribe_url, message_id=message_id))
    message = f.string(body, "Message", "Message", required=True)
    subject = f.string(body, "Subject", "Subject")
    if isinstance(message, str) and len(message.encode("utf-8")) > MAX_MESSAGE_BYTES:
        f.add("Message", f"is larger than {MAX_MESSAGE_BYTES} bytes")
    f.raise_if_any("invalid SNS notification")
    envelope = {k: body[k] for k in ("MessageId", "TopicArn", "Subject", "Timestamp") if k in body}
    try:
        alarm = json.loads(message)
    except (ValueError, RecursionError):
        alarm = None
    if isinstance(alarm, dict) and "AlarmName" in alarm:
        return p.ParsedPayload(events=[parse_alarm(alarm, envelope=envelope)])
    # Something other than a CloudWatch alarm published to the topic: still worth a page.
    title = (subject or "").strip() or message.strip().splitlines()[0]
    event = p.AlertEvent(
        action=p.TRIGGER,
        external_id=p.fingerprint("sns", topic_arn, title),
        title=p.clip_text(title.strip() or "SNS notification", p.MAX_TITLE),
        description=p.clip_text(message, p.MAX_DESCRIPTION),
        details={"sns": envelope},
        raw={**envelope, "Message": p.clip_text(message, 4_000)},
        state="Notification",
    )
    return p.ParsedPayload(events=[event])


def parse_alarm(alarm: dict, *, envelope: dict) -> p.AlertEvent:
    """One event from a CloudWatch alarm state change."""
    f = p.Fields()
    name = f.string(alarm, "AlarmName", "Message.AlarmName", required=True)
    state = f.string(alarm, "NewStateValue", "Message.NewStateValue", required=True)
    arn = f.string(alarm, "AlarmArn", "Message.AlarmArn")
    description = f.string(alarm, "AlarmDescription", "Message.AlarmDescription", default="")
    reason = f.string(alarm, "NewStateReason", "Message.NewStateReason", default="")
    trigger = f.mapping(alarm, "Trigger", "Message.Trigger")
    action = ALARM_STATES.get(state.strip().upper()) if isinstance(state, str) else None
    if state is not None and action is None and "Message.NewStateValue" not in f.errors:
        f.add("Message.NewStateValue", "must be ALARM, OK or INSUFFICIENT_DATA")
    f.raise_if_any("invalid CloudWatch alarm")
    text = "\n\n".join(part for part in ((description or "").strip(), (reason or "").strip()) if part)
    details = {
        "alarm": {k: alarm[k] for k in ("AlarmName", "AlarmArn", "AWSAccountId", "Region", "NewStateValue",
                                        "OldStateValue", "StateChangeTime", "NewStateReason") if k in alarm},
        "trigger": trigger,
        **({"sns": envelope} if envelope else {}),
    }
    return p.AlertEvent(
        action=action,
        external_id=p.bounded_external_id(arn if arn and arn.strip() else f"alarm:{name}"),
        title=p.clip_text(name.strip(), p.MAX_TITLE),
        description=p.clip_text(text, p.MAX_DESCRIPTION),
        severity=None,
        details=details,
        links=[],
        raw={**envelope, "Message": alarm},
        state=state,
    )
