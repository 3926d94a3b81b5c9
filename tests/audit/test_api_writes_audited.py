"""Done-when: every successful management-API write writes exactly one audit row naming its object.

The test walks the OpenAPI document's write operations (POST/PUT/PATCH/DELETE under
/api/v1), runs one successful call of each in a realistic order, and checks the audit rows
that call added. Operations that are *not* configuration changes are excluded, on purpose:

- ingestion (tag `ingestion`): alert webhooks, Infobip receipts and inbound replies, and
  heartbeat pings — authenticated by source keys/tokens, high-volume, and their effects are
  on incident timelines and the notification log;
- incident actions and notes (`/incidents/{incident_id}/...`): every one is already an
  incident timeline event with actor and `recorded_by_id` (invariant 4);
- `/notifications/{notification_id}/retry`: a responder re-sending a failed page, also an
  operational action on an incident's delivery, not configuration.

A write operation added later that is neither excluded here nor walked fails the test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pagerpal_web.api.openapi import build_openapi
from tests.api.seed import seed
from tests.audit.conftest import audit_rows, basic, last_audit_id, row_text
from tests.factories import PASSWORD

WRITE_METHODS = ("post", "put", "patch", "delete")
NEW_PASSWORD = "walk-the-audit-log-password"


def excluded(path: str, operation: dict) -> bool:
    """The exclusions documented in the module docstring."""
    return ("ingestion" in operation.get("tags", []) or path.startswith("/incidents/{incident_id}/")
            or path == "/notifications/{notification_id}/retry")


def audited_operations() -> set[tuple[str, str]]:
    paths = build_openapi()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method, operation in item.items()
            if method in WRITE_METHODS and not excluded(path, operation)}


def test_every_configuration_write_writes_one_audit_row(app, client, admin_account):
    ids = seed(app)
    headers = basic(admin_account.email)
    now = datetime.now(UTC).replace(microsecond=0)
    at = lambda hours: (now + timedelta(days=30, hours=hours)).isoformat()  # noqa: E731
    walked: set[tuple[str, str]] = set()
    secrets_seen: list[str] = []

    def call(method: str, template: str, body: dict | None, object_type: str, object_id=None, **path_ids):
        """One call; returns its JSON. Checks it wrote exactly one audit row naming (object_type, object_id)."""
        values = {**ids, **path_ids}
        url = "/api/v1" + template.format(**values)
        before = last_audit_id(app)
        response = client.open(url, method=method, headers=headers, json=body)
        assert response.status_code < 300, (method, url, response.status_code, response.get_data(as_text=True))
        payload = response.get_json(silent=True) or {}
        rows = audit_rows(app, before)
        assert len(rows) == 1, (method, template, [r["action"] for r in rows])
        row = rows[0]
        expected_id = object_id(payload) if callable(object_id) else object_id
        expected_id = payload.get("id") if expected_id is None else expected_id
        assert (row["object_type"], row["object_id"]) == (object_type, str(expected_id)), (method, template, row)
        assert row["actor_user_id"] == admin_account.id and row["actor_kind"] == "user" and row["via"] == "api"
        assert row["request_id"] == response.headers["X-Request-ID"]
        assert row["client_address"]
        for secret in ("key", "token"):
            if isinstance(payload.get(secret), str):
                secrets_seen.append(payload[secret])
        for secret in secrets_seen + [NEW_PASSWORD]:
            assert secret not in row_text(row)
        walked.add((method, template))
        return payload, row

    # users and their contact methods, notification rules
    user, row = call("POST", "/users", {"email": "walk@example.test", "name": "Walk", "password": NEW_PASSWORD},
                     "user")
    assert row["action"] == "user.created" and row["after"]["password_hash"] == "***"
    uid = user["id"]
    _, row = call("PATCH", "/users/{user_id}", {"role": "viewer"}, "user", uid, user_id=uid)
    assert (row["action"], row["before"], row["after"]) == ("user.role_changed", {"role": "responder"},
                                                             {"role": "viewer"})
    _, row = call("PATCH", "/users/{user_id}", {"password": PASSWORD}, "user", uid, user_id=uid)
    assert row["action"] == "user.password_changed"
    assert row["before"] == {"password_hash": "***"} and row["after"] == {"password_hash": "***"}
    call("POST", "/users/{user_id}/deactivate", None, "user", uid, user_id=uid)
    call("POST", "/users/{user_id}/reactivate", None, "user", uid, user_id=uid)
    method, row = call("POST", "/users/{user_id}/contact-methods", {"channel": "sms", "destination": "+14155550123"},
                       "contact_method", user_id=uid)
    assert row["after"]["destination"] == "+14155550123"
    call("PATCH", "/users/{user_id}/contact-methods/{method_id}", {"enabled": False}, "contact_method",
         method["id"], user_id=uid, method_id=method["id"])
    call("PUT", "/users/{user_id}/notification-rules",
         {"rules": [{"contact_method_id": ids["method_id"], "delay_minutes": 0}]}, "user", ids["user_id"])
    call("DELETE", "/users/{user_id}/contact-methods/{method_id}", None, "contact_method", method["id"],
         user_id=uid, method_id=method["id"])

    # teams
    team, _ = call("POST", "/teams", {"name": "Walk team"}, "team")
    call("PATCH", "/teams/{team_id}", {"description": "walked"}, "team", team["id"], team_id=team["id"])
    call("POST", "/teams/{team_id}/members", {"user_id": uid}, "team", team["id"], team_id=team["id"])
    call("DELETE", "/teams/{team_id}/members/{user_id}", None, "team", team["id"], team_id=team["id"], user_id=uid)
    call("DELETE", "/teams/{team_id}", None, "team", team["id"], team_id=team["id"])

    # schedules: entries, overrides, rotations and their participants
    sched, _ = call("POST", "/schedules", {"name": "Walk schedule", "timezone": "UTC"}, "schedule")
    sid = sched["id"]
    call("PATCH", "/schedules/{schedule_id}", {"description": "walked"}, "schedule", sid, schedule_id=sid)
    entry, _ = call("POST", "/schedules/{schedule_id}/entries",
                    {"user_id": ids["user_id"], "starts_at": at(0), "ends_at": at(8)}, "schedule_entry",
                    schedule_id=sid)
    call("PATCH", "/schedules/{schedule_id}/entries/{entry_id}", {"ends_at": at(9)}, "schedule_entry",
         entry["id"], schedule_id=sid, entry_id=entry["id"])
    call("DELETE", "/schedules/{schedule_id}/entries/{entry_id}", None, "schedule_entry", entry["id"],
         schedule_id=sid, entry_id=entry["id"])
    override, _ = call("POST", "/schedules/{schedule_id}/overrides",
                       {"user_id": ids["user_id"], "starts_at": at(1), "ends_at": at(2)}, "schedule_override",
                       schedule_id=sid)
    call("DELETE", "/schedules/{schedule_id}/overrides/{override_id}", None, "schedule_override", override["id"],
         schedule_id=sid, override_id=override["id"])
    rotation, _ = call("POST", "/schedules/{schedule_id}/rotations",
                       {"start_date": "2026-01-05", "participants": [ids["user_id"]]}, "rotation", schedule_id=sid)
    rid = rotation["id"]
    # Two services in one request (settings and turn order): still one row for the rotation.
    _, row = call("PATCH", "/schedules/{schedule_id}/rotations/{rotation_id}",
                  {"name": "Walk rotation", "participants": [ids["user_id"], uid]}, "rotation", rid,
                  schedule_id=sid, rotation_id=rid)
    assert row["after"]["name"] == "Walk rotation" and row["after"]["participants"] == [ids["user_id"], uid]
    grown, _ = call("POST", "/schedules/{schedule_id}/rotations/{rotation_id}/participants", {"user_id": uid},
                    "rotation", rid, schedule_id=sid, rotation_id=rid)
    participant = grown["participants"][-1]["id"]
    call("DELETE", "/schedules/{schedule_id}/rotations/{rotation_id}/participants/{participant_id}", None,
         "rotation", rid, schedule_id=sid, rotation_id=rid, participant_id=participant)
    call("DELETE", "/schedules/{schedule_id}/rotations/{rotation_id}", None, "rotation", rid, schedule_id=sid,
         rotation_id=rid)
    call("DELETE", "/schedules/{schedule_id}", None, "schedule", sid, schedule_id=sid)

    # escalation policies, levels, targets
    policy, row = call("POST", "/escalation-policies", {"name": "Walk policy", "levels": [
        {"delay_minutes": 0, "targets": [{"type": "user", "id": ids["user_id"]}]}]}, "escalation_policy")
    assert row["after"]["levels"][0]["targets"] == [{"type": "user", "id": ids["user_id"]}]
    pid = policy["id"]
    call("PATCH", "/escalation-policies/{policy_id}", {"repeat_count": 1}, "escalation_policy", pid, policy_id=pid)
    level, _ = call("POST", "/escalation-policies/{policy_id}/levels", {"delay_minutes": 5}, "escalation_level",
                    policy_id=pid)
    lid = level["id"]
    call("PATCH", "/escalation-policies/{policy_id}/levels/{level_id}", {"delay_minutes": 10}, "escalation_level",
         lid, policy_id=pid, level_id=lid)
    def new_target(level_json: dict) -> int:
        return next(t["id"] for t in level_json["targets"] if t["target_id"] == uid)

    with_target, _ = call("POST", "/escalation-policies/{policy_id}/levels/{level_id}/targets",
                          {"type": "user", "id": uid}, "escalation_target", new_target, policy_id=pid, level_id=lid)
    target = new_target(with_target)
    call("DELETE", "/escalation-policies/{policy_id}/levels/{level_id}/targets/{target_id}", None,
         "escalation_target", target, policy_id=pid, level_id=lid, target_id=target)
    call("DELETE", "/escalation-policies/{policy_id}/levels/{level_id}", None, "escalation_level", lid,
         policy_id=pid, level_id=lid)

    # alert sources: the full key is in the responses, never in a row
    source, row = call("POST", "/alert-sources", {"name": "Walk source", "policy_id": pid}, "alert_source")
    assert source["key"] and row["after"]["key_hash"] == "***"
    src = source["id"]
    _, row = call("PATCH", "/alert-sources/{source_id}", {"name": "Walk source 2", "active": False},
                  "alert_source", src, source_id=src)
    assert row["action"] == "alert_source.updated" and row["after"]["name"] == "Walk source 2"
    regenerated, row = call("POST", "/alert-sources/{source_id}/regenerate-key", None, "alert_source", src,
                            source_id=src)
    assert row["action"] == "alert_source.key_regenerated" and row["after"]["key_hash"] == "***"
    assert regenerated["key"] != source["key"]
    call("DELETE", "/alert-sources/{source_id}", None, "alert_source", src, source_id=src)
    call("DELETE", "/escalation-policies/{policy_id}", None, "escalation_policy", pid, policy_id=pid)

    # heartbeat monitors: the ping token is in the response, never in a row
    heartbeat, _ = call("POST", "/heartbeats", {"name": "Walk heartbeat", "interval_seconds": 60,
                                                "escalation_policy_id": ids["policy_id"]}, "heartbeat")
    assert heartbeat["token"]
    hid = heartbeat["id"]
    call("PATCH", "/heartbeats/{heartbeat_id}", {"grace_seconds": 5}, "heartbeat", hid, heartbeat_id=hid)
    call("DELETE", "/heartbeats/{heartbeat_id}", None, "heartbeat", hid, heartbeat_id=hid)

    # maintenance windows (walked when the API serves them)
    if "/maintenance-windows" in build_openapi()["paths"]:
        window, _ = call("POST", "/maintenance-windows", {
            "starts_at": now.isoformat(), "ends_at": at(1), "reason": "walk",
            "alert_source_ids": [ids["source_id"]]}, "maintenance_window")
        call("POST", "/maintenance-windows/{window_id}/end", None, "maintenance_window", window["id"],
             window_id=window["id"])
        call("DELETE", "/maintenance-windows/{window_id}", None, "maintenance_window", window["id"],
             window_id=window["id"])

    missing = audited_operations() - walked
    assert not missing, f"write operations with no audit check (walk them or document an exclusion): {missing}"
