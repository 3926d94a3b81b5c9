"""Teams, schedules, escalation policies and alert sources over the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def post(client, auth, url, body):
    response = client.post(url, headers=auth, json=body)
    assert response.status_code == 201, response.json
    assert response.headers["Location"]
    return response.json


def test_teams_and_members(client, admin, make_account):
    person = make_account()
    team = post(client, admin, "/api/v1/teams", {"name": "Platform", "description": "infra"})
    assert client.post("/api/v1/teams", headers=admin, json={"name": "Platform"}).status_code == 409
    members = f"/api/v1/teams/{team['id']}/members"
    assert post(client, admin, members, {"user_id": person.id})["id"] == person.id
    again = client.post(members, headers=admin, json={"user_id": person.id})
    assert again.status_code == 409 and person.name in again.json["error"]["message"]
    assert client.post(members, headers=admin, json={"user_id": 424242}).status_code == 422
    assert [m["id"] for m in client.get(members, headers=admin).json["items"]] == [person.id]
    renamed = client.patch(f"/api/v1/teams/{team['id']}", headers=admin, json={"name": "Platform team"})
    assert renamed.json["name"] == "Platform team" and renamed.json["members"][0]["id"] == person.id
    assert client.delete(f"{members}/{person.id}", headers=admin).status_code == 204
    assert client.delete(f"{members}/{person.id}", headers=admin).status_code == 404
    assert client.delete(f"/api/v1/teams/{team['id']}", headers=admin).status_code == 204


def test_schedule_layers_oncall_and_overlap_conflict(client, admin, make_account):
    ada, bob, cy = make_account(name="Ada"), make_account(name="Bob"), make_account(name="Cy")
    schedule = post(client, admin, "/api/v1/schedules", {"name": "Primary", "timezone": "Europe/Berlin"})
    base = f"/api/v1/schedules/{schedule['id']}"
    rotation = post(client, admin, f"{base}/rotations", {"start_date": "2025-01-06", "shift_unit": "days",
                                                         "participants": [ada.id, bob.id]})
    assert [p["user_id"] for p in rotation["participants"]] == [ada.id, bob.id]
    entry = post(client, admin, f"{base}/entries", {"user_id": cy.id, "starts_at": "2025-01-07T10:00:00Z",
                                                    "ends_at": "2025-01-07T12:00:00+01:00"})
    assert entry["ends_at"] == "2025-01-07T11:00:00Z"
    clash = client.post(f"{base}/entries", headers=admin, json={
        "user_id": ada.id, "starts_at": "2025-01-07T10:30:00Z", "ends_at": "2025-01-07T13:00:00Z"})
    assert clash.status_code == 409 and f"entry {entry['id']}" in clash.json["error"]["message"]
    reversed_ = client.post(f"{base}/entries", headers=admin, json={
        "user_id": ada.id, "starts_at": "2025-01-08T10:00:00Z", "ends_at": "2025-01-08T09:00:00Z"})
    assert reversed_.status_code == 422 and "ends_at" in reversed_.json["error"]["fields"]

    at_entry = client.get(f"{base}/oncall?at=2025-01-07T10:15:00Z", headers=admin).json
    assert at_entry["on_call"]["user"]["id"] == cy.id and at_entry["on_call"]["layer"] == "entry"
    # 2025-01-08 09:00 Berlin is turn 2 (0-based) → Ada again; before 09:00 local it is Bob.
    assert client.get(f"{base}/oncall?at=2025-01-08T07:59:00Z", headers=admin).json["on_call"]["user"][
        "id"] == bob.id
    day = "from=2025-01-07T00:00:00Z&to=2025-01-08T00:00:00Z"
    shifts = client.get(f"{base}/shifts?{day}", headers=admin).json
    assert [s["layer"] for s in shifts["items"]] == ["rotation", "rotation", "entry", "rotation"]
    assert client.get(f"{base}/shifts?from=2025-01-07T00:00:00Z", headers=admin).status_code == 422
    assert client.get(f"{base}/oncall?at=yesterday", headers=admin).status_code == 422

    everywhere = client.get("/api/v1/oncall?at=2025-01-07T10:15:00Z", headers=admin).json
    assert everywhere["items"][0]["schedule"]["id"] == schedule["id"]
    assert everywhere["items"][0]["on_call"]["user"]["id"] == cy.id
    january = "from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z"
    user_shifts = client.get(f"/api/v1/users/{cy.id}/shifts?{january}", headers=admin).json["items"]
    assert len(user_shifts) == 1 and user_shifts[0]["schedule_id"] == schedule["id"]

    now = datetime.now(UTC)
    override = post(client, admin, f"{base}/overrides", {"user_id": bob.id, "starts_at": now.isoformat(),
                                                         "ends_at": (now + timedelta(hours=1)).isoformat(),
                                                         "reason": "swap"})
    assert client.get(f"{base}/oncall", headers=admin).json["on_call"]["layer"] == "override"
    assert client.delete(f"{base}/overrides/{override['id']}", headers=admin).status_code == 204
    listed = client.get(f"{base}/entries?from=2025-01-07T11:30:00Z", headers=admin).json
    assert listed["items"] == []


def test_policy_levels_and_duplicate_level_conflict(client, admin, make_account):
    person = make_account()
    schedule = post(client, admin, "/api/v1/schedules", {"name": "S"})
    policy = post(client, admin, "/api/v1/escalation-policies", {
        "name": "Default",
        "levels": [{"delay_minutes": 5, "targets": [{"type": "schedule", "id": schedule["id"]}]}]})
    assert policy["levels"][0]["level_number"] == 1
    target = policy["levels"][0]["targets"][0]
    assert target == {"id": target["id"], "type": "schedule", "target_id": schedule["id"]}
    levels = f"/api/v1/escalation-policies/{policy['id']}/levels"
    level2 = post(client, admin, levels, {"delay_minutes": 10,
                                          "targets": [{"type": "user", "id": person.id}]})
    assert level2["level_number"] == 2
    duplicate = client.post(levels, headers=admin, json={"level_number": 2})
    assert duplicate.status_code == 409 and "level 2" in duplicate.json["error"]["message"]
    target_url = f"{levels}/{level2['id']}/targets"
    assert client.post(target_url, headers=admin, json={"type": "user", "id": person.id}).status_code == 409
    assert client.post(target_url, headers=admin, json={"type": "robot", "id": 1}).status_code == 422
    in_use = client.delete(f"/api/v1/schedules/{schedule['id']}", headers=admin)
    assert in_use.status_code == 409
    bad = client.post("/api/v1/escalation-policies", headers=admin, json={
        "name": "Broken", "levels": [{"delay_minutes": -1}]})
    assert bad.status_code == 422 and "levels[0].delay_minutes" in bad.json["error"]["fields"]
    assert client.get("/api/v1/escalation-policies", headers=admin).json["items"][0]["name"] == "Default"


def test_alert_source_key_shown_once_and_regenerated(client, admin, app):
    source = post(client, admin, "/api/v1/alert-sources", {"name": "grafana-prod", "kind": "grafana",
                                                           "severity_map": {"P1": "critical"}})
    key = source["key"]
    assert key.startswith("ppk_") and key in source["webhook"]["url_with_key"]
    base_url = app.config["PAGERPAL"].base_url.rstrip("/")
    assert source["webhook"]["url"] == f"{base_url}/api/v1/webhooks/grafana"
    read = client.get(f"/api/v1/alert-sources/{source['id']}", headers=admin)
    assert key not in read.get_data(as_text=True) and read.json["masked_key"].endswith(key[-4:])
    assert "key" not in read.json and "<source key>" in read.json["webhook"]["url_with_key"]
    assert key not in client.get("/api/v1/alert-sources", headers=admin).get_data(as_text=True)

    generic = post(client, admin, "/api/v1/alert-sources", {"name": "generic"})
    alert = {"title": "Disk full", "external_id": "disk-1"}
    assert client.post("/api/v1/alerts", headers={"X-API-Key": generic["key"]}, json=alert).status_code == 201
    fresh = client.post(f"/api/v1/alert-sources/{generic['id']}/regenerate-key", headers=admin)
    assert fresh.status_code == 200 and fresh.json["key"] != generic["key"]
    assert fresh.json["key"] in fresh.json["webhook"]["curl"]
    assert client.post("/api/v1/alerts", headers={"X-API-Key": generic["key"]}, json=alert).status_code == 401
    new_key = {"X-API-Key": fresh.json["key"]}
    assert client.post("/api/v1/alerts", headers=new_key, json=alert).status_code == 200
    has_incident = client.delete(f"/api/v1/alert-sources/{generic['id']}", headers=admin)
    assert has_incident.status_code == 409
    off = client.patch(f"/api/v1/alert-sources/{generic['id']}", headers=admin, json={"active": False})
    assert off.json["active"] is False
    assert client.post("/api/v1/alerts", headers=new_key, json=alert).status_code == 403
    bad_kind = client.post("/api/v1/alert-sources", headers=admin, json={"name": "x", "kind": "nagios"})
    assert bad_kind.status_code == 422 and "kind" in bad_kind.json["error"]["fields"]
