"""The hand-written half of the OpenAPI document: schema building blocks and every named schema.

`openapi.py` builds the paths (the operations) from these; tests/api checks the whole
document against the routes the app serves.
"""

from __future__ import annotations

import copy

from pagerpal_core.models.alert_sources import SNS_VERIFICATION_MODES, SOURCE_KINDS
from pagerpal_core.models.audit import ACTOR_KINDS
from pagerpal_core.models.escalation import TARGET_TYPES
from pagerpal_core.models.heartbeats import HEARTBEAT_STATES
from pagerpal_core.models.incidents import SEVERITIES, STATUSES
from pagerpal_core.models.notifications import MAX_RULE_DELAY_MINUTES, NOTIFICATION_STATUSES
from pagerpal_core.models.users import CHANNELS, ROLES, WEBHOOK_FORMATS
from pagerpal_core.services.heartbeats import MAX_GRACE_SECONDS, MAX_INTERVAL_SECONDS, MIN_INTERVAL_SECONDS

# --- schema building blocks ----------------------------------------------------------------

STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
ID = {"type": "integer", "minimum": 1}
ANY_OBJECT = {"type": "object"}
TS = {"type": "string", "format": "date-time"}


def nullable(schema: dict) -> dict:
    """`schema` that also allows null."""
    schema = copy.deepcopy(schema)
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    schema["type"] = [schema["type"], "null"]
    return schema


def enum(values) -> dict:
    """A string schema limited to `values`."""
    return {"type": "string", "enum": list(values)}


def ref(name: str) -> dict:
    """A reference to the component schema `name`."""
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: dict, **extra) -> dict:
    """An array schema of `items`."""
    return {"type": "array", "items": items, **extra}


def obj(required=(), **properties) -> dict:
    """A closed object: exactly these properties, `required` among them."""
    body = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        body["required"] = list(required)
    return body


def all_required(**properties) -> dict:
    """A response object: every property is always present."""
    return obj(tuple(properties), **properties)


def page_of(name: str) -> dict:
    """The schema of one keyset page of `name`: items and the next page's URL."""
    return all_required(items=array(ref(name)), next=nullable({"type": "string", "description":
                        "URL of the next page, or null on the last page"}))


def list_of(name: str) -> dict:
    """The schema of an unpaged list of `name`."""
    return all_required(items=array(ref(name)))


TEXT = {"type": "string", "maxLength": 1000}
NAME = {"type": "string", "minLength": 1, "maxLength": 120}
INSTANT = {"type": "string", "format": "date-time", "description": "ISO-8601; Z or an offset (naive = UTC)"}

ACK_TIMEOUT = nullable({"type": "integer", "minimum": 1, "maximum": 10080,
                        "description": "minutes after an acknowledge until an unresolved incident pages again; "
                                       "null: never"})

HEARTBEAT_FIELDS = {
    "name": NAME,
    "interval_seconds": {"type": "integer", "minimum": MIN_INTERVAL_SECONDS, "maximum": MAX_INTERVAL_SECONDS,
                         "description": "a ping is expected this often"},
    "grace_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_GRACE_SECONDS,
                      "description": "slack after the interval before the monitor counts as missed"},
    "escalation_policy_id": ID,
}

SCHEMAS = {
    "Error": all_required(error=obj(
        ("code", "message"), code=STR, message=STR,
        fields={"type": "object", "additionalProperties": STR, "description": "bad field → what is wrong"},
        detail=ANY_OBJECT)),
    "UserRef": all_required(id=ID, name=STR, email=STR, active=BOOL),
    "ContactMethod": all_required(id=ID, channel=enum(CHANNELS), destination=STR, enabled=BOOL,
                                  created_at=TS, webhook_format=nullable(enum(WEBHOOK_FORMATS))),
    "ContactMethodCreate": obj(("channel", "destination"), channel=enum(CHANNELS), enabled=BOOL,
                               destination={"type": "string", "description": "E.164 for sms/whatsapp, "
                                            "an http(s) URL for webhook"},
                               webhook_format=nullable(enum(WEBHOOK_FORMATS))),
    "ContactMethodUpdate": obj((), channel=enum(CHANNELS), destination=STR, enabled=BOOL,
                               webhook_format=nullable(enum(WEBHOOK_FORMATS))),
    "User": all_required(id=ID, email=STR, name=STR, role=enum(ROLES), active=BOOL, can_log_in=BOOL,
                         timezone=STR, contact_methods=array(ref("ContactMethod")), created_at=TS,
                         deactivated_at=nullable(TS)),
    "UserCreate": obj(("email",), email={"type": "string", "format": "email"}, name=nullable(STR),
                      role=nullable(enum(ROLES)), timezone=nullable(STR),
                      password=nullable({"type": "string", "description": "omit for a responder identity "
                                         "that is paged but cannot log in"}),
                      contact_methods=nullable(array(ref("ContactMethodCreate")))),
    "UserUpdate": obj((), email={"type": "string", "format": "email"}, name=STR, role=enum(ROLES),
                      timezone=STR,
                      password=nullable({"type": "string", "description": "null removes the login"})),
    "Shift": all_required(schedule_id=ID, user=ref("UserRef"), start=TS, end=TS,
                          layer=enum(("override", "entry", "rotation")), source_id=ID),
    "ScheduleRef": all_required(id=ID, name=STR, team_id=nullable(ID), timezone=STR),
    "OnCallNow": all_required(schedule=ref("ScheduleRef"), on_call=nullable(ref("Shift"))),
    "OnCallEverywhere": all_required(at=TS, items=array(ref("OnCallNow"))),
    "ScheduleOnCall": all_required(at=TS, schedule_id=ID, on_call=nullable(ref("Shift"))),
    "Team": all_required(id=ID, name=STR, description=STR, members=array(ref("UserRef")), created_at=TS,
                         webhook_url=nullable({"type": "string", "description": "masked: scheme and host only"}),
                         webhook_format=nullable(enum(WEBHOOK_FORMATS))),
    "TeamCreate": obj(("name",), name=NAME, description=TEXT),
    "TeamUpdate": obj((), name=NAME, description=TEXT,
                      webhook_url=nullable({"type": "string", "maxLength": 2000, "description":
                                            "http(s) chat webhook; private addresses refused unless "
                                            "WEBHOOK_ALLOW_PRIVATE=true; null clears it"}),
                      webhook_format=nullable(enum(WEBHOOK_FORMATS))),
    "MemberAdd": obj(("user_id",), user_id=ID),
    "Participant": all_required(id=ID, user_id=ID, position=INT),
    "Rotation": all_required(id=ID, schedule_id=ID, name=STR, shift_length=INT,
                             shift_unit=enum(("hours", "days", "weeks")), handoff_time=STR,
                             start_date={"type": "string", "format": "date"},
                             participants=array(ref("Participant")), created_at=TS),
    "RotationCreate": obj(("start_date",), name=STR, shift_length={"type": "integer", "minimum": 1},
                          shift_unit=enum(("hours", "days", "weeks")),
                          handoff_time={"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                          start_date={"type": "string", "format": "date"},
                          participants=array(ID, description="user ids in turn order")),
    "RotationUpdate": obj((), name=STR, shift_length={"type": "integer", "minimum": 1},
                          shift_unit=enum(("hours", "days", "weeks")),
                          handoff_time={"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                          start_date={"type": "string", "format": "date"},
                          participants=array(ID, description="replaces the turn order")),
    "Schedule": all_required(id=ID, name=STR, description=STR, timezone=STR, team_id=nullable(ID),
                             rotations=array(ref("Rotation")), created_at=TS),
    "ScheduleCreate": obj(("name",), name=NAME, timezone={"type": "string", "description": "IANA zone"},
                          description=TEXT, team_id=nullable(ID)),
    "ScheduleUpdate": obj((), name=NAME, timezone=STR, description=TEXT, team_id=nullable(ID)),
    "Entry": all_required(id=ID, schedule_id=ID, user_id=ID, starts_at=TS, ends_at=TS, created_at=TS),
    "EntryCreate": obj(("user_id", "starts_at", "ends_at"), user_id=ID, starts_at=INSTANT, ends_at=INSTANT),
    "EntryUpdate": obj((), user_id=ID, starts_at=INSTANT, ends_at=INSTANT),
    "Override": all_required(id=ID, schedule_id=ID, user_id=ID, starts_at=TS, ends_at=TS, reason=STR,
                             created_at=TS),
    "OverrideCreate": obj(("user_id", "starts_at", "ends_at"), user_id=ID, starts_at=INSTANT, ends_at=INSTANT,
                          reason={"type": "string", "maxLength": 500}),
    "Target": all_required(id=ID, type=enum(TARGET_TYPES), target_id=ID),
    "TargetCreate": obj(("type", "id"), type=enum(TARGET_TYPES), id=ID),
    "Level": all_required(id=ID, policy_id=ID, level_number=INT, delay_minutes=INT,
                          targets=array(ref("Target"))),
    "LevelCreate": obj((), level_number={"type": "integer", "minimum": 1},
                       delay_minutes={"type": "integer", "minimum": 0}, targets=array(ref("TargetCreate"))),
    "LevelUpdate": obj((), level_number={"type": "integer", "minimum": 1},
                       delay_minutes={"type": "integer", "minimum": 0}),
    "Policy": all_required(id=ID, name=STR, description=STR, team_id=nullable(ID), repeat_count=INT,
                           ack_timeout_minutes=nullable(INT),
                           levels=array(ref("Level")), created_at=TS),
    "PolicyCreate": obj(("name",), name=NAME, description=TEXT, team_id=nullable(ID),
                        repeat_count={"type": "integer", "minimum": 0}, ack_timeout_minutes=ACK_TIMEOUT,
                        levels=array(ref("LevelCreate"))),
    "PolicyUpdate": obj((), name=NAME, description=TEXT, team_id=nullable(ID),
                        repeat_count={"type": "integer", "minimum": 0}, ack_timeout_minutes=ACK_TIMEOUT),
    "Webhook": all_required(
        url={"type": "string", "description": "where this kind of sender posts"},
        header={"type": "string", "description": "the header that carries the key"},
        url_with_key={"type": "string", "description": "the URL with the key as Basic-auth password, for "
                      "senders that cannot set headers; a placeholder unless the key is shown"},
        curl=nullable({"type": "string", "description": "a ready-to-run test call (generic sources)"})),
    "AlertSource": all_required(
        id=ID, name=STR, kind=enum(SOURCE_KINDS), active=BOOL, policy_id=nullable(ID), team_id=nullable(ID),
        severity_map={"type": "object", "additionalProperties": enum(SEVERITIES)},
        sns_verification=enum(SNS_VERIFICATION_MODES),
        masked_key=STR, webhook=ref("Webhook"), last_alert_at=nullable(TS), key_rotated_at=nullable(TS),
        created_at=TS, updated_at=TS),
    "AlertSourceCreate": obj(("name",), name=NAME, kind=enum(SOURCE_KINDS), policy_id=nullable(ID),
                             team_id=nullable(ID), active=BOOL,
                             sns_verification={**enum(SNS_VERIFICATION_MODES), "description": "CloudWatch/SNS: "
                                               "'verify' (default) checks SNS message signatures too; "
                                               "'key-only' trusts the key alone"},
                             severity_map={"type": "object", "additionalProperties": enum(SEVERITIES),
                                           "description": "sender severity word → PagerPal severity; "
                                           "'*' sets the default"}),
    "AlertSourceUpdate": obj((), name=NAME, kind=enum(SOURCE_KINDS), policy_id=nullable(ID),
                             team_id=nullable(ID), active=BOOL, sns_verification=enum(SNS_VERIFICATION_MODES),
                             severity_map={"type": "object", "additionalProperties": enum(SEVERITIES)}),
    "Notification": all_required(
        id=ID, incident_id=nullable(ID), user_id=nullable(ID), channel=enum(CHANNELS), destination=STR,
        escalation_level=nullable(INT), subject=STR, status=enum(NOTIFICATION_STATUSES), attempts=INT,
        next_attempt_at=nullable(TS), provider_message_id=nullable(STR), provider_status=nullable(STR),
        last_error=nullable(STR), created_at=TS, updated_at=TS, sent_at=nullable(TS),
        delivered_at=nullable(TS)),
    "Incident": all_required(
        id=ID, title=STR, description=STR, severity=enum(SEVERITIES), status=enum(STATUSES),
        alert_source_id=nullable(ID), external_id=nullable(STR), team_id=nullable(ID), policy_id=nullable(ID),
        assignee=nullable(ref("UserRef")), current_level=INT, escalation_round=INT,
        next_escalation_at=nullable(TS), unrouted=BOOL, occurrence_count=INT, details=ANY_OBJECT,
        paging_state={"type": "string", "enum": ["paging", "exhausted", "unrouted", "snoozed", "acknowledged",
                                                 "resolved"],
                      "description": "what paging is doing: exhausted = every level paged, nobody acknowledged"},
        snoozed_until=nullable(TS), snoozed_by_id=nullable(ID),
        retrigger_at=nullable({**TS, "description": "when this acknowledged incident pages level 1 again "
                               "(end of its snooze, or the policy's ack timeout)"}),
        links={"type": "array"}, created_at=TS, updated_at=TS, last_seen_at=TS,
        acknowledged_at=nullable(TS), acknowledged_by_id=nullable(ID), resolved_at=nullable(TS),
        resolved_by_id=nullable(ID)),
    "Event": all_required(id=ID, kind=STR, message=STR, actor=STR, actor_user_id=nullable(ID),
                          actor_source_id=nullable(ID), recorded_by_id=nullable(ID), detail=ANY_OBJECT,
                          created_at=TS),
    "Action": obj((), acting_as=nullable({"type": "integer", "minimum": 1, "description":
                                          "record the action for this active responder or admin instead of "
                                          "the caller (the caller is kept as recorded_by_id)"})),
    "ResolveAction": obj((), acting_as=nullable(ID), note=nullable({"type": "string", "maxLength": 10000})),
    "ReassignAction": obj(("user_id",), user_id=ID, acting_as=nullable(ID)),
    "SnoozeAction": obj(("minutes",), minutes={"type": "integer", "minimum": 1, "maximum": 1440,
                                               "description": "acknowledge for this long, then page level 1 "
                                               "again unless resolved"}, acting_as=nullable(ID)),
    "NoteCreate": obj(("text",), text={"type": "string", "minLength": 1, "maxLength": 10000},
                      acting_as=nullable(ID)),
    "Job": all_required(
        name=STR, enabled=BOOL, stale=BOOL, interval_seconds=nullable({"type": "number"}),
        leader=nullable(all_required(host=STR, pid=nullable(INT))), last_started_at=nullable(TS),
        last_success_at=nullable(TS), last_error=nullable(STR), last_error_at=nullable(TS),
        run_count=nullable(INT), last_duration_ms=nullable({"type": "number"}), standby_instances=array(STR)),
    "ChannelHealth": all_required(channel=enum(CHANNELS), provider=STR, configured=BOOL, missing=array(STR),
                                  mode=enum(("safe", "live")), summary=STR),
    "SystemJobs": all_required(items=array(ref("Job")), providers=all_required(
        sending_enabled=BOOL, mode=enum(("safe", "live")), receipt_token_configured=BOOL,
        channels=array(ref("ChannelHealth"))),
        watchdog=nullable(ref("Watchdog"))),
    # Heartbeat monitors, the policy simulator and the escalation watchdog.
    "Heartbeat": all_required(
        id=ID, name=STR, interval_seconds=INT, grace_seconds=INT, escalation_policy_id=ID,
        state={"type": "string", "enum": list(HEARTBEAT_STATES),
               "description": "new: never pinged; up: pinging on time; down: missed, its incident opened"},
        masked_token=STR, last_ping_at=nullable(TS), expected_by=nullable(TS), down_since=nullable(TS),
        ping_count=INT, incident_id=nullable(ID), created_at=TS, updated_at=TS),
    "HeartbeatCreate": obj(("name", "interval_seconds", "escalation_policy_id"), **HEARTBEAT_FIELDS),
    "HeartbeatUpdate": obj((), **HEARTBEAT_FIELDS),
    "HeartbeatPing": all_required(status=STR, heartbeat=STR, state=enum(HEARTBEAT_STATES),
                                  expected_by=nullable(TS), resolved_incident_id=nullable(ID)),
    "Reach": all_required(
        user=ref("UserRef"), reason=enum(("user", "override", "entry", "rotation", "unknown")), via=STR,
        schedule_id=nullable(ID), team_id=nullable(ID),
        until=nullable({"type": "string", "format": "date-time", "description": "when the override, entry or "
                        "rotation turn that puts them there ends"}),
        until_local=nullable({"type": "string", "description": "`until` on the schedule's clock"}),
        explanation={"type": "string", "description": "e.g. \"override until 13:00 CET, schedule primary\""}),
    "SimulatedLevel": all_required(level_number=INT, delay_minutes=INT, reaches=array(ref("Reach"))),
    "Simulation": all_required(policy_id=ID, at=TS, levels=array(ref("SimulatedLevel"))),
    "Watchdog": all_required(
        checked_at=TS, healthy=BOOL, overdue_escalations=INT, overdue_incident_ids=array(ID),
        oldest_overdue_seconds={"type": "number"}, stuck_notifications=INT, stuck_notification_ids=array(ID),
        stale_jobs=array(STR), ping=nullable({"type": "string", "description": "the outside ping's HTTP status, "
                                              "or error: <kind>; null when not pinged"}),
        report_stale=BOOL, problems=array(STR)),
    # Ingestion (webhooks blueprint): bodies are the senders' own formats.
    "GenericAlert": {"type": "object", "required": ["title"], "properties": {
        "title": STR, "external_id": STR, "severity": STR, "description": STR,
        "status": {"type": "string", "description": "firing/triggered or resolved"},
        "details": ANY_OBJECT, "links": {"type": "array"}}},
    "IngestResult": {"type": "object", "required": ["outcome", "external_id", "incident_id", "message"],
                     "properties": {"status": STR, "outcome": STR, "external_id": STR,
                                    "incident_id": nullable(INT), "message": STR, "occurrence_count": INT}},
    "IngestGroup": {"type": "object", "required": ["status", "counts", "results"], "properties": {
        "status": STR, "counts": ANY_OBJECT, "results": array(ref("IngestResult")), "sns": ANY_OBJECT,
        "message": STR}},
}



def extended(name: str, **properties) -> dict:
    """SCHEMAS[name] with more (always present) properties, still closed."""
    base = copy.deepcopy(SCHEMAS[name])
    base["properties"].update(properties)
    base["required"] = base["required"] + list(properties)
    return base


SCHEMAS["NotificationRule"] = all_required(
    contact_method_id=ID, delay_minutes={"type": "integer", "minimum": 0, "maximum": MAX_RULE_DELAY_MINUTES})
SCHEMAS["NotificationRules"] = all_required(
    user_id=ID, default={"type": "boolean", "description": "true when the user has no rules of their own"},
    rules=array(ref("NotificationRule")),
    effective=array(all_required(contact_method_id=ID, channel=enum(CHANNELS),
                                 delay_minutes={"type": "integer", "minimum": 0})))
SCHEMAS["NotificationRulesUpdate"] = obj(("rules",), rules=array(ref("NotificationRule"), maxItems=20))
SCHEMAS["AlertSourceWithKey"] = extended("AlertSource", key={"type": "string", "description": "the full key, "
                                                             "shown only in this response"})
SCHEMAS["HeartbeatWithToken"] = extended(
    "Heartbeat", token={"type": "string", "description": "the ping token, shown only in this response"},
    ping_url={"type": "string", "description": "POST or GET it to ping; shown only in this response"})
SCHEMAS["IncidentDetail"] = extended("Incident", timeline=array(ref("Event")),
                                     notifications=array(ref("Notification")))
SCHEMAS["AuditEvent"] = all_required(
    id=ID, created_at=TS, actor_user_id=nullable(ID), actor_kind=enum(ACTOR_KINDS),
    actor_label={"type": "string", "description": "who it was at the time (a name, cli (<os user>), system)"},
    via=nullable(enum(("ui", "api", "cli", "worker"))),
    action={"type": "string", "description": "<noun>.<verb>, e.g. user.role_changed, auth.signin_failed"},
    object_type=STR, object_id=nullable(STR),
    before=nullable({"type": "object", "description": "changed fields before; secrets read ***"}),
    after=nullable({"type": "object", "description": "changed fields after; secrets read ***"}),
    request_id=nullable(STR), client_address=nullable(STR))

# Maintenance windows and the incident trace ("why was / wasn't this paged?").
MAINTENANCE_TARGETS = {"type": "array", "items": ID, "maxItems": 200}
SCHEMAS["MaintenanceWindow"] = all_required(
    id=ID, reason=STR, starts_at=TS, ends_at=TS,
    ended_at=nullable({"type": "string", "format": "date-time", "description": "set when ended early"}),
    state=enum(("scheduled", "active", "over")), alert_source_ids=array(ID), policy_ids=array(ID),
    created_by_id=nullable(ID), created_at=TS)
SCHEMAS["MaintenanceWindowCreate"] = obj(
    ("starts_at", "ends_at", "reason"), starts_at=INSTANT,
    ends_at={**INSTANT, "description": "after starts_at, in the future, at most 366 days after starts_at"},
    reason={"type": "string", "maxLength": 500}, alert_source_ids=nullable(MAINTENANCE_TARGETS),
    policy_ids=nullable(MAINTENANCE_TARGETS))
TRACE_NOTIFICATION = all_required(
    id=ID, channel=STR, destination={"type": "string", "description": "masked"}, status=STR, attempts=INT,
    due_at=nullable(TS), first_attempt_at=nullable(TS), sent_at=nullable(TS), delivered_at=nullable(TS),
    failed_over_at=nullable(TS), provider_status=nullable(STR), provider_message_id=nullable(STR),
    last_error=nullable(STR), events=array(all_required(at=TS, kind=STR, text=STR)), text=STR)
TRACE_PERSON = all_required(
    user_id=nullable(ID), name=STR, reason=enum(("user", "override", "entry", "rotation", "unknown")),
    explanation={"type": "string", "description": "e.g. \"override until 13:00 CET, schedule primary\""},
    reachable=BOOL, rules=array({"type": "object"}), notifications=array(TRACE_NOTIFICATION), text=STR)
SCHEMAS["Trace"] = all_required(
    incident_id=ID, status=enum(STATUSES),
    paging_state=enum(("paging", "exhausted", "unrouted", "snoozed", "acknowledged", "resolved", "maintenance")),
    summary={"type": "string", "description": "the answer in one or two sentences"},
    source=nullable({"type": "object"}), policy=nullable({"type": "object"}),
    maintenance=nullable({"type": "object"}),
    stopped=all_required(kind=enum(("resolved", "snoozed", "acknowledged", "maintenance", "unrouted", "exhausted",
                                    "paging")), text=STR),
    steps=array(all_required(at=TS, kind=STR, text=STR, actor=STR, level=nullable(INT),
                             people=array(TRACE_PERSON))))
