"""GET /api/v1/openapi.json: the OpenAPI 3.1 description of every route under /api/v1.

Written by hand as Python data, next to the code it describes; tests/api checks that
every route the app serves under /api/v1 appears here (and nothing else does), that
each operation's `x-min-role` matches its view, and runs schemathesis against it.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache

from flask import jsonify

from pagerpal_core.models.alert_sources import SOURCE_KINDS
from pagerpal_core.models.escalation import TARGET_TYPES
from pagerpal_core.models.incidents import SEVERITIES, STATUSES
from pagerpal_core.models.notifications import NOTIFICATION_STATUSES
from pagerpal_core.models.users import CHANNELS, ROLES
from pagerpal_web.api import bp
from pagerpal_web.api.common import MAX_LIMIT

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
    return {"type": "string", "enum": list(values)}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: dict, **extra) -> dict:
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
    return all_required(items=array(ref(name)), next=nullable({"type": "string", "description":
                        "URL of the next page, or null on the last page"}))


def list_of(name: str) -> dict:
    return all_required(items=array(ref(name)))


TEXT = {"type": "string", "maxLength": 1000}
NAME = {"type": "string", "minLength": 1, "maxLength": 120}
INSTANT = {"type": "string", "format": "date-time", "description": "ISO-8601; Z or an offset (naive = UTC)"}

ACK_TIMEOUT = nullable({"type": "integer", "minimum": 1, "maximum": 10080,
                        "description": "minutes after an acknowledge until an unresolved incident pages again; "
                                       "null: never"})

SCHEMAS = {
    "Error": all_required(error=obj(
        ("code", "message"), code=STR, message=STR,
        fields={"type": "object", "additionalProperties": STR, "description": "bad field → what is wrong"},
        detail=ANY_OBJECT)),
    "UserRef": all_required(id=ID, name=STR, email=STR, active=BOOL),
    "ContactMethod": all_required(id=ID, channel=enum(CHANNELS), destination=STR, enabled=BOOL,
                                  created_at=TS),
    "ContactMethodCreate": obj(("channel", "destination"), channel=enum(CHANNELS), enabled=BOOL,
                               destination={"type": "string", "description": "E.164 for sms/whatsapp"}),
    "ContactMethodUpdate": obj((), channel=enum(CHANNELS), destination=STR, enabled=BOOL),
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
    "Team": all_required(id=ID, name=STR, description=STR, members=array(ref("UserRef")), created_at=TS),
    "TeamCreate": obj(("name",), name=NAME, description=TEXT),
    "TeamUpdate": obj((), name=NAME, description=TEXT),
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
        masked_key=STR, webhook=ref("Webhook"), last_alert_at=nullable(TS), key_rotated_at=nullable(TS),
        created_at=TS, updated_at=TS),
    "AlertSourceCreate": obj(("name",), name=NAME, kind=enum(SOURCE_KINDS), policy_id=nullable(ID),
                             team_id=nullable(ID), active=BOOL,
                             severity_map={"type": "object", "additionalProperties": enum(SEVERITIES),
                                           "description": "sender severity word → PagerPal severity; "
                                           "'*' sets the default"}),
    "AlertSourceUpdate": obj((), name=NAME, kind=enum(SOURCE_KINDS), policy_id=nullable(ID),
                             team_id=nullable(ID), active=BOOL,
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
        channels=array(ref("ChannelHealth")))),
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


SCHEMAS["AlertSourceWithKey"] = extended("AlertSource", key={"type": "string", "description": "the full key, "
                                                             "shown only in this response"})
SCHEMAS["IncidentDetail"] = extended("Incident", timeline=array(ref("Event")),
                                     notifications=array(ref("Notification")))

# --- operations ------------------------------------------------------------------------------

ERRORS = {
    "400": "The body is missing or not a JSON object",
    "401": "No or wrong credentials",
    "403": "The account's role is too low for this call, or the request's Origin is not this site or in "
           "ALLOWED_ORIGINS",
    "404": "No such resource",
    "409": "Conflicts with the current state; the message names the conflicting thing",
    "413": "The body is larger than MAX_REQUEST_BYTES",
    "415": "A write whose body is not Content-Type: application/json",
    "422": "Validation failed; `fields` names each bad field",
    "429": "Too many failed sign-ins from this client (see Retry-After)",
}
PATH_PARAM = re.compile(r"{(\w+)}")


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _error(status: str) -> dict:
    response = {"description": ERRORS[status], "content": _json(ref("Error"))}
    if status == "401":
        response["headers"] = {"WWW-Authenticate": {"schema": STR}}
    if status == "429":
        response["headers"] = {"Retry-After": {"schema": STR}}
    return response


def op(summary: str, tag: str, *, role: str = "viewer", ok: int = 200, schema: dict | None = None,
       body: str | None = None, body_required: bool = True, query: tuple = (), errors: tuple = (),
       description: str | None = None) -> dict:
    """One management operation: Basic auth, `role` at least, the common error responses."""
    responses = {}
    if ok == 204:
        responses["204"] = {"description": "Done; no body"}
    else:
        responses[str(ok)] = {"description": "OK" if ok == 200 else "Created", "content": _json(schema)}
        if ok == 201:
            responses["201"]["headers"] = {"Location": {"description": "URL of the new resource",
                                                        "schema": STR}}
    statuses = {"401", "403", "429", *errors}
    if body:
        statuses |= {"400", "413", "415", "422"}
    if query:
        statuses.add("422")
    for status in sorted(statuses):
        responses[status] = _error(status)
    operation = {"summary": summary, "tags": [tag], "x-min-role": role, "responses": responses,
                 "description": (description + "\n\n" if description else "") + f"Needs the **{role}** role."}
    if body:
        operation["requestBody"] = {"required": body_required, "content": _json(ref(body))}
    if query:
        operation["parameters"] = list(query)
    return operation


def q(name: str, schema: dict, description: str, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


PAGE = (q("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
          f"page size (≤ {MAX_LIMIT}, default 50)"),
        q("after", {"type": "integer", "minimum": 0}, "id of the last item of the previous page"))
WINDOW = (q("from", INSTANT, "window start (ISO-8601)"), q("to", INSTANT, "window end (ISO-8601)"))
REQUIRED_WINDOW = (q("from", INSTANT, "window start (ISO-8601)", True), q("to", INSTANT, "window end", True))
AT = (q("at", INSTANT, "the instant to ask about; now when absent"),)
INCIDENT_SORTS = ("created_at", "updated_at", "last_seen_at", "severity", "status")
INCIDENT_FILTERS = (
    q("status", STR, f"comma-separated: {', '.join(STATUSES)}, or open (triggered and acknowledged) or all"),
    q("severity", STR, f"comma-separated: {', '.join(SEVERITIES)}"),
    q("team", {"type": "integer", "minimum": 0}, "team id"),
    q("source", {"type": "integer", "minimum": 0}, "alert source id"),
    q("assignee", {"type": "integer", "minimum": 0}, "assignee user id"),
    q("since", INSTANT, "created at or after"),
    q("until", INSTANT, "created before"),
    q("text", {"type": "string", "maxLength": 200}, "case-insensitive substring of title or external id"),
    q("q", {"type": "string", "maxLength": 200}, "another name for text (as the UI's search box sends it)"),
    q("sort", enum(INCIDENT_SORTS + tuple("-" + s for s in INCIDENT_SORTS)),
      "sort key, '-' for descending; default -created_at"),
)


def crud(path: str, tag: str, noun: str, *, create: str | None = None, update: str | None = None,
         delete: bool = True, schema: str, list_schema: dict | None = None, list_query: tuple = PAGE,
         conflicts: tuple = ("409",)) -> dict:
    """The usual collection + item operations for one resource."""
    item_path = path + "/{" + noun.replace(" ", "_").replace("-", "_") + "_id}"
    paths = {path: {"get": op(f"List {noun}s", tag, schema=list_schema or page_of(schema), query=list_query,
                              errors=("404",) if "{" in path else ())}}
    if create:
        paths[path]["post"] = op(f"Create a {noun}", tag, role="admin", ok=201, schema=ref(schema),
                                 body=create, errors=conflicts + (("404",) if "{" in path else ()))
    paths[item_path] = {"get": op(f"Read a {noun}", tag, schema=ref(schema), errors=("404",))}
    if update:
        paths[item_path]["patch"] = op(f"Update a {noun}", tag, role="admin", schema=ref(schema), body=update,
                                       errors=("404",) + conflicts)
    if delete:
        paths[item_path]["delete"] = op(f"Delete a {noun}", tag, role="admin", ok=204, errors=("404", "409"))
    return paths


def _rename(paths: dict, old: str, new: str) -> dict:
    return {path.replace(old, new): value for path, value in paths.items()}


def management_paths() -> dict:
    paths: dict = {}
    # users
    paths.update(crud("/users", "users", "user", create="UserCreate", update="UserUpdate", delete=False,
                      schema="User"))
    paths["/users/{user_id}/deactivate"] = {"post": op(
        "Deactivate a user", "users", role="admin", schema=ref("User"), errors=("404", "409"),
        description="No login and no paging from now on; history stays. There is no hard delete. "
                    "Refused (409) when it would leave no active admin who can log in.")}
    paths["/users/{user_id}/reactivate"] = {"post": op("Reactivate a user", "users", role="admin",
                                                       schema=ref("User"), errors=("404",))}
    paths["/users/{user_id}/shifts"] = {"get": op(
        "A user's shifts across all schedules", "users", schema=list_of("Shift"), query=REQUIRED_WINDOW,
        errors=("404",))}
    contact = crud("/users/{user_id}/contact-methods", "users", "contact-method",
                   create="ContactMethodCreate", update="ContactMethodUpdate", schema="ContactMethod",
                   list_schema=list_of("ContactMethod"), list_query=())
    contact = _rename(contact, "{contact_method_id}", "{method_id}")
    contact["/users/{user_id}/contact-methods/{method_id}"]["delete"]["responses"].pop("409")
    paths.update(contact)
    # teams
    paths.update(crud("/teams", "teams", "team", create="TeamCreate", update="TeamUpdate", schema="Team"))
    paths["/teams/{team_id}/members"] = {
        "get": op("List a team's members", "teams", schema=list_of("UserRef"), errors=("404",)),
        "post": op("Add a member", "teams", role="admin", ok=201, schema=ref("UserRef"), body="MemberAdd",
                   errors=("404", "409"))}
    paths["/teams/{team_id}/members/{user_id}"] = {"delete": op(
        "Remove a member", "teams", role="admin", ok=204, errors=("404",))}
    # schedules
    paths.update(crud("/schedules", "schedules", "schedule", create="ScheduleCreate", update="ScheduleUpdate",
                      schema="Schedule"))
    paths["/schedules/{schedule_id}/oncall"] = {"get": op(
        "Who is on call in a schedule", "schedules", schema=ref("ScheduleOnCall"), query=AT, errors=("404",))}
    paths["/schedules/{schedule_id}/shifts"] = {"get": op(
        "Resolved shifts in a window", "schedules", schema=list_of("Shift"), query=REQUIRED_WINDOW,
        errors=("404",), description="Overrides win over entries, entries over rotations; at most 400 days.")}
    paths.update(crud("/schedules/{schedule_id}/entries", "schedules", "entry", create="EntryCreate",
                      update="EntryUpdate", schema="Entry", list_query=PAGE + WINDOW))
    overrides = crud("/schedules/{schedule_id}/overrides", "schedules", "override", create="OverrideCreate",
                     schema="Override", list_query=PAGE + WINDOW, conflicts=())
    overrides["/schedules/{schedule_id}/overrides/{override_id}"]["delete"]["responses"].pop("409")
    paths.update(overrides)
    rotations = crud("/schedules/{schedule_id}/rotations", "schedules", "rotation", create="RotationCreate",
                     update="RotationUpdate", schema="Rotation", list_schema=list_of("Rotation"),
                     list_query=(), conflicts=())
    rotations["/schedules/{schedule_id}/rotations/{rotation_id}"]["delete"]["responses"].pop("409")
    paths.update(rotations)
    paths["/schedules/{schedule_id}/rotations/{rotation_id}/participants"] = {"post": op(
        "Append a participant", "schedules", role="admin", ok=201, schema=ref("Rotation"), body="MemberAdd",
        errors=("404", "409"))}
    paths["/schedules/{schedule_id}/rotations/{rotation_id}/participants/{participant_id}"] = {"delete": op(
        "Remove a participant", "schedules", role="admin", ok=204, errors=("404",))}
    paths["/oncall"] = {"get": op("Who is on call now, in every schedule", "oncall",
                                  schema=ref("OnCallEverywhere"), query=AT)}
    # escalation policies
    policies = crud("/escalation-policies", "escalation-policies", "policy", create="PolicyCreate",
                    update="PolicyUpdate", schema="Policy")
    paths.update(policies)
    levels = crud("/escalation-policies/{policy_id}/levels", "escalation-policies", "level",
                  create="LevelCreate", update="LevelUpdate", schema="Level", list_schema=list_of("Level"),
                  list_query=())
    levels["/escalation-policies/{policy_id}/levels/{level_id}"]["delete"]["responses"].pop("409")
    paths.update(levels)
    paths["/escalation-policies/{policy_id}/levels/{level_id}/targets"] = {"post": op(
        "Add a target to a level", "escalation-policies", role="admin", ok=201, schema=ref("Level"),
        body="TargetCreate", errors=("404", "409"))}
    paths["/escalation-policies/{policy_id}/levels/{level_id}/targets/{target_id}"] = {"delete": op(
        "Remove a target", "escalation-policies", role="admin", ok=204, errors=("404",))}
    # alert sources
    sources = crud("/alert-sources", "alert-sources", "source", create="AlertSourceCreate",
                   update="AlertSourceUpdate", schema="AlertSource")
    key_note = "The response's `key` is the full key, shown this once; store it in the sender now."
    sources["/alert-sources"]["post"]["responses"]["201"]["content"] = _json(ref("AlertSourceWithKey"))
    sources["/alert-sources"]["post"]["description"] = key_note + "\n\n" + sources["/alert-sources"]["post"][
        "description"]
    paths.update(sources)
    paths["/alert-sources/{source_id}/regenerate-key"] = {"post": op(
        "Issue a new key", "alert-sources", role="admin", errors=("404",), description=key_note +
        " The old key stops working at once.",
        schema=ref("AlertSourceWithKey"))}
    # incidents
    paths["/incidents"] = {"get": op("List incidents", "incidents", schema=page_of("Incident"),
                                     query=PAGE + INCIDENT_FILTERS,
                                     description="Keyset pages: `after` is the id of the last incident seen, "
                                                 "so pages stay stable while incidents arrive.")}
    paths["/incidents/{incident_id}"] = {"get": op(
        "Read an incident with timeline and notifications", "incidents", schema=ref("IncidentDetail"),
        errors=("404",))}
    actions = {
        "acknowledge": ("Acknowledge: paging stops", "Action",
                        "Two simultaneous acknowledges: one succeeds, the other gets 409."),
        "resolve": ("Resolve, optionally with a note", "ResolveAction", None),
        "reopen": ("Reopen: paging restarts at level 1", "Action", None),
        "escalate": ("Page the next level now", "Action", None),
        "reassign": ("Assign to another active user and page them", "ReassignAction",
                     "The new assignee is paged on their contact methods and keeps the incident while "
                     "escalation pages further levels."),
        "snooze": ("Snooze: acknowledge for `minutes`, then page level 1 again", "SnoozeAction",
                   "minutes from 1 to 1440; a triggered or acknowledged incident can be snoozed, a resolved "
                   "one is a 409."),
    }
    for verb, (summary, body, note) in actions.items():
        paths[f"/incidents/{{incident_id}}/{verb}"] = {"post": op(
            summary, "incidents", role="responder", schema=ref("Incident"), body=body,
            body_required=verb in ("reassign", "snooze"), errors=("404", "409"), description=note)}
    paths["/incidents/{incident_id}/notes"] = {
        "get": op("List an incident's notes", "incidents", schema=list_of("Event"), errors=("404",)),
        "post": op("Add a note", "incidents", role="responder", ok=201, schema=ref("Event"),
                   body="NoteCreate", errors=("404",))}
    # notifications
    notification_filters = (q("status", enum(NOTIFICATION_STATUSES), "status"),
                            q("incident", {"type": "integer", "minimum": 0}, "incident id"))
    paths["/notifications"] = {"get": op("List notifications", "notifications",
                                         schema=page_of("Notification"), query=PAGE + notification_filters)}
    paths["/notifications/{notification_id}"] = {"get": op("Read a notification", "notifications",
                                                           schema=ref("Notification"), errors=("404",))}
    paths["/notifications/{notification_id}/retry"] = {"post": op(
        "Retry a failed page", "notifications", role="responder", schema=ref("Notification"),
        errors=("404", "409"), description="Only failed, exhausted or undeliverable notifications.")}
    # system
    paths["/system/jobs"] = {"get": op("Worker jobs and delivery channels", "system",
                                       schema=ref("SystemJobs"))}
    paths["/openapi.json"] = {"get": op("This document", "system", schema={"type": "object"})}
    for path, item in paths.items():
        names = PATH_PARAM.findall(path)
        if names:
            item["parameters"] = [{"name": n, "in": "path", "required": True,
                                   "schema": {"type": "integer", "minimum": 0}} for n in names]
    return paths


def ingestion_paths() -> dict:
    """The webhooks blueprint's routes (source-key auth, no account)."""
    security = [{"sourceKey": []}, {"sourceBearer": []}, {"sourceBasic": []}]

    def ingest(summary: str, body: dict, ok: dict, extra: tuple = ("201",)) -> dict:
        responses = {"200": {"description": "Accepted", "content": _json(ok)}}
        for status in extra:
            responses[status] = {"description": "Accepted; opened an incident", "content": _json(ok)}
        for status in ("400", "401", "413", "422"):
            responses[status] = _error(status)
        responses["403"] = {"description": "The alert source is inactive", "content": _json(ref("Error"))}
        responses["429"] = {"description": "The source is over its rate limit",
                            "content": _json(ref("Error")), "headers": {"Retry-After": {"schema": STR}}}
        return {"post": {"summary": summary, "tags": ["ingestion"], "security": security,
                         "requestBody": {"required": True, "content": _json(body)}, "responses": responses}}

    group = ref("IngestGroup")
    sender_body = {"type": "object", "description": "the sender's own JSON format"}
    paths = {
        "/alerts": ingest("Send a generic JSON alert", ref("GenericAlert"), ref("IngestResult")),
        "/webhooks/grafana": ingest("Grafana alert webhook", sender_body, group, ()),
        "/webhooks/alertmanager": ingest("Prometheus Alertmanager webhook", sender_body, group, ()),
        "/webhooks/cloudwatch": ingest("CloudWatch alarm via SNS (and SNS subscription messages)",
                                       sender_body, group, ()),
    }
    pagerduty = ingest("PagerDuty Events API v2 event", sender_body, {"type": "object"}, ("202",))
    del pagerduty["post"]["responses"]["200"]
    pagerduty["post"]["responses"]["400"] = {"description": "Invalid event (PagerDuty's shape plus `error`)",
                                             "content": _json({"type": "object"})}
    paths["/webhooks/pagerduty"] = pagerduty
    paths["/webhooks/pagerduty/v2/enqueue"] = copy.deepcopy(pagerduty)
    paths["/notifications/infobip/receipts"] = {"post": {
        "summary": "Infobip delivery reports", "tags": ["ingestion"], "security": [{"receiptToken": []}, {}],
        "requestBody": {"required": True, "content": _json({"type": "object"})},
        "responses": {"200": {"description": "Counts of what changed", "content": _json({"type": "object"})},
                      **{s: _error(s) for s in ("400", "401", "413", "422")}}}}
    paths["/notifications/infobip/inbound"] = {"post": {
        "summary": "Infobip inbound SMS (MO_JSON_2) and WhatsApp replies: reply commands such as `4821 ACK`",
        "tags": ["ingestion"], "security": [{"inboundToken": []}, {"inboundTokenQuery": []}],
        "description": "Commands `<code> ACK|RES|ESC|SNOOZE 30m|1h|4h` (a bare `ACK` when the sender has one "
                       "open page) act as the user whose SMS/WhatsApp contact method sent them; each gets an "
                       "answer through the outbox. Unknown numbers and replayed `messageId`s change nothing. "
                       "404 while INFOBIP_INBOUND_TOKEN is unset.",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["results"],
            "properties": {"results": {"type": "array", "items": {"type": "object", "required": ["messageId", "from"],
                                                                   "properties": {"messageId": STR, "from": STR,
                                                                                  "to": STR, "text": STR}}},
                           "messageCount": {"type": "integer"}, "pendingMessageCount": {"type": "integer"}}})},
        "responses": {"200": {"description": "Counts of what happened", "content": _json({"type": "object"})},
                      **{s: _error(s) for s in ("400", "401", "404", "413")},
                      "422": {"description": "Not used: a malformed inbound body is a 400",
                              "content": _json(ref("Error"))}}}}
    return paths


@lru_cache(maxsize=1)
def build_openapi() -> dict:
    """The whole OpenAPI 3.1 document (paths relative to the /api/v1 server)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "PagerPal management API", "version": "1",
                 "description": "HTTP Basic auth with a PagerPal account's email and password. Roles: viewer "
                                "(read), responder (incident actions, notification retry), admin "
                                "(configuration). Errors: {\"error\": {\"code\", \"message\", \"fields\"?}}. "
                                "Timestamps are ISO-8601 UTC. Lists are keyset-paginated (`limit` ≤ "
                                f"{MAX_LIMIT}, `after`, and a `next` link). Send credentials up front: "
                                "an anonymous request's 401 names the scheme `xBasic` so browsers do "
                                "not prompt. Writes take `Content-Type: application/json` (a write "
                                "without a body may omit it); a request whose Origin is not this site "
                                "or in ALLOWED_ORIGINS gets 403."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"basicAuth": []}],
        "components": {
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "sourceKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "sourceBearer": {"type": "http", "scheme": "bearer"},
                "sourceBasic": {"type": "http", "scheme": "basic", "description": "the key as the password"},
                "receiptToken": {"type": "apiKey", "in": "header", "name": "X-Infobip-Receipt-Token"},
                "inboundToken": {"type": "apiKey", "in": "header", "name": "X-Infobip-Inbound-Token"},
                "inboundTokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
            },
            "schemas": SCHEMAS,
        },
        "paths": {**management_paths(), **ingestion_paths()},
    }


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 document for /api/v1."""
    return jsonify(build_openapi())
