"""GET /api/v1/openapi.json: the OpenAPI 3.1 description of every route under /api/v1.

Written by hand as Python data, next to the code it describes: the schemas in
`openapi_schemas.py`, the operations (paths) here; the ingestion paths come from the
webhooks' own FORMATS table. tests/api checks that every route the app serves under
/api/v1 appears here (and nothing else does), that each operation's `x-min-role` matches
its view, and runs schemathesis against it.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache

from flask import jsonify

from pagerpal_core.models.audit import ACTOR_KINDS
from pagerpal_core.models.incidents import SEVERITIES, STATUSES
from pagerpal_core.models.notifications import NOTIFICATION_STATUSES
from pagerpal_web.api import bp
from pagerpal_web.api.common import MAX_LIMIT
from pagerpal_web.api.openapi_schemas import INSTANT, SCHEMAS, STR, enum, list_of, page_of, ref
from pagerpal_web.webhooks.alerts import FORMATS

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
    """An OpenAPI query parameter."""
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

AUDIT_FILTERS = (
    q("actor", {"type": "integer", "minimum": 0}, "acting user id"),
    q("actor_kind", enum(ACTOR_KINDS), "user, cli, api_key or system"),
    q("action", {"type": "string", "maxLength": 64}, "e.g. user.role_changed"),
    q("object_type", {"type": "string", "maxLength": 64}, "e.g. user, alert_source, escalation_policy"),
    q("object_id", {"type": "string", "maxLength": 64}, "the object's id (with object_type)"),
    q("since", INSTANT, "at or after"),
    q("until", INSTANT, "before"),
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
    """The OpenAPI paths of the management API (users to system), by resource."""
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
    paths["/users/{user_id}/notification-rules"] = {
        "get": op("A user's notification rules", "users", schema=ref("NotificationRules"), errors=("404",),
                  description="Admins, or the user themselves. `effective` is what paging the user does now: "
                              "their rules on enabled contact methods, or every enabled method at 0 minutes."),
        "put": op("Replace a user's notification rules", "users", role="viewer", schema=ref("NotificationRules"),
                  body="NotificationRulesUpdate", errors=("404",),
                  description="Admins, or the user themselves. Rules in order: each pages one of the user's "
                              "contact methods `delay_minutes` (0–1440) after the user is paged; each method "
                              "once. Failover walks the same order. An empty list returns to the default.")}
    paths["/notifications/{notification_id}/retry"] = {"post": op(
        "Retry a failed page", "notifications", role="responder", schema=ref("Notification"),
        errors=("404", "409"), description="Only failed, exhausted or undeliverable notifications.")}
    # heartbeat monitors
    heartbeats = crud("/heartbeats", "heartbeats", "heartbeat", create="HeartbeatCreate", update="HeartbeatUpdate",
                      schema="Heartbeat", list_schema=list_of("Heartbeat"), list_query=())
    heartbeats["/heartbeats"]["post"]["responses"]["201"]["content"] = _json(ref("HeartbeatWithToken"))
    heartbeats["/heartbeats"]["post"]["description"] = (
        "The response's `token` and `ping_url` are shown this once. A monitor pages its escalation policy "
        "when no ping arrives within interval + grace after the last one (a new monitor waits for its "
        "first ping).\n\n" + heartbeats["/heartbeats"]["post"]["description"])
    heartbeats["/heartbeats/{heartbeat_id}"]["delete"]["responses"].pop("409")
    paths.update(heartbeats)
    # who would be paged at T
    paths["/escalation-policies/{policy_id}/simulate"] = {"get": op(
        "Who each level would page at an instant, and why", "escalation-policies", schema=ref("Simulation"),
        query=AT, errors=("404",), description="For each level: its delay and the people it reaches at `at` "
        "(now when absent), each with the reason: named on the level, or on call by rotation turn, "
        "scheduled shift or override (with when it ends), directly or through a team.")}
    # maintenance windows
    windows = crud("/maintenance-windows", "maintenance", "maintenance window", create="MaintenanceWindowCreate",
                   schema="MaintenanceWindow", list_schema=list_of("MaintenanceWindow"), list_query=(), conflicts=())
    windows = _rename(windows, "{maintenance_window_id}", "{window_id}")
    windows["/maintenance-windows"]["post"]["description"] = (
        "Alerts of the covered sources and policies still open incidents, but nobody is paged until the window "
        "ends; an incident still open then is paged at once. `ends_at` before `starts_at`, unknown sources or "
        "policies, or a window covering nothing are 422s naming the field.\n\n"
        + windows["/maintenance-windows"]["post"]["description"])
    windows["/maintenance-windows/{window_id}"]["delete"]["responses"].pop("409")
    paths.update(windows)
    paths["/maintenance-windows/{window_id}/end"] = {"post": op(
        "End a window now", "maintenance", role="admin", schema=ref("MaintenanceWindow"), errors=("404", "409"),
        description="Also cancels a window that has not begun. Held incidents are paged at the worker's next "
                    "cycle. 409 when the window is already over.")}
    # why was / wasn't it paged
    paths["/incidents/{incident_id}/trace"] = {"get": op(
        "Why the incident was (or was not) paged, step by step", "incidents", schema=ref("Trace"),
        errors=("404",), description="Source and policy chosen, each level reached and when, who each target "
        "resolved to and why (named, rotation turn, scheduled shift or override), each person's notification "
        "rules, each notification with its attempts, provider answer, receipt and failover, and what stopped "
        "escalation (acknowledge, resolve, snooze, exhaustion, maintenance, unrouted).")}
    # system
    paths["/audit-events"] = {"get": op(
        "The audit log: configuration changes and sign-ins", "audit", role="admin", schema=page_of("AuditEvent"),
        query=PAGE + AUDIT_FILTERS, description="Oldest first; read-only (no route changes or deletes a row). "
        "Rows older than AUDIT_RETENTION_DAYS are deleted by the worker.")}
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
    pagerduty = ingest("PagerDuty Events API v2 event", sender_body, {"type": "object"}, ("202",))
    del pagerduty["post"]["responses"]["200"]
    pagerduty["post"]["responses"]["400"] = {"description": "Invalid event (PagerDuty's shape plus `error`)",
                                             "content": _json({"type": "object"})}
    # Each format's operation; its paths come from the webhooks' FORMATS table (one source of paths).
    operations = {
        "generic": ingest("Send a generic JSON alert", ref("GenericAlert"), ref("IngestResult")),
        "grafana": ingest("Grafana alert webhook", sender_body, group, ()),
        "alertmanager": ingest("Prometheus Alertmanager webhook", sender_body, group, ()),
        "cloudwatch": ingest("CloudWatch alarm via SNS (and SNS subscription messages)", sender_body, group, ()),
        "pagerduty": pagerduty,
    }
    paths = {}
    for kind, fmt in FORMATS.items():
        for path in (fmt.path, *fmt.aliases):
            operation = copy.deepcopy(operations[kind])
            operation["post"]["description"] = fmt.summary
            paths[path] = operation
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
    ping = {"summary": "Ping a heartbeat monitor (its token is the only credential)", "tags": ["ingestion"],
            "security": [], "description": "GET works as well as POST, for `curl URL` in a cron line. "
            "An unknown token is a 404 and writes nothing; a monitor pinged too often gets a 429.",
            "responses": {"200": {"description": "Ping recorded; a missed monitor's incident is resolved",
                                  "content": _json(ref("HeartbeatPing"))},
                          "404": {"description": "No monitor has this token; nothing was written",
                                  "content": _json(ref("Error"))},
                          "429": {"description": "This monitor is pinged too often", "content": _json(ref("Error")),
                                  "headers": {"Retry-After": {"schema": STR}}}}}
    paths["/heartbeats/{token}/ping"] = {"get": ping, "post": copy.deepcopy(ping), "parameters": [
        {"name": "token", "in": "path", "required": True, "schema": STR}]}
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
