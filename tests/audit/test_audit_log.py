"""The audit log through the UI forms, sign-in, the read surfaces (admins only), the CLI, retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pagerpal_core.models import AuditEvent
from pagerpal_core.services import alert_sources, audit, teams
from pagerpal_web.extensions import db
from tests.audit.conftest import audit_rows, basic, last_audit_id, login, row_text
from tests.conftest import csrf_token_from
from tests.factories import PASSWORD


def post_form(client, page: str, url: str, data: dict):
    """Submit a UI form with the CSRF token of `page`."""
    token = csrf_token_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


# --- UI forms write the same rows ----------------------------------------------------------

def test_ui_forms_write_the_same_rows_as_the_api(app, client, admin_account, make_account):
    login(client, admin_account.email)
    start = last_audit_id(app)
    response = post_form(client, "/users", "/users", {
        "name": "Form Person", "email": "form@example.test", "role": "responder", "password": "form-password-123",
        "timezone": "UTC", "channel": "", "destination": ""})
    assert response.status_code == 303
    created = audit_rows(app, start)
    assert [r["action"] for r in created] == ["user.created"]
    assert created[0]["via"] == "ui" and created[0]["actor_user_id"] == admin_account.id
    assert "form-password-123" not in row_text(created[0])
    user_id = int(created[0]["object_id"])

    start = last_audit_id(app)
    post_form(client, f"/users/{user_id}", f"/users/{user_id}/role", {"role": "viewer"})
    post_form(client, "/teams", "/teams", {"name": "Form team", "description": ""})
    rows = audit_rows(app, start)
    assert [(r["action"], r["object_type"]) for r in rows] == [("user.role_changed", "user"), ("team.created", "team")]
    assert rows[0]["before"] == {"role": "responder"} and rows[0]["after"] == {"role": "viewer"}
    assert all(r["request_id"] and r["client_address"] for r in rows)


def test_ui_key_regeneration_is_audited_without_the_key(app, client, admin_account):
    with app.app_context():
        issued = alert_sources.create_alert_source(db.session, name="UI source", now=datetime.now(UTC))
        db.session.commit()
        source_id, old_key = issued.source.id, issued.key
    login(client, admin_account.email)
    start = last_audit_id(app)
    page = f"/alert-sources/{source_id}/regenerate"
    response = post_form(client, page, page, {})
    assert response.status_code == 200
    rows = audit_rows(app, start)
    assert [(r["action"], r["object_id"]) for r in rows] == [("alert_source.key_regenerated", str(source_id))]
    shown = response.get_data(as_text=True)
    new_key = next(word for word in shown.replace("<", " ").replace(">", " ").replace('"', " ").split()
                   if word.startswith("ppk_") and len(word) > 20)
    everything = row_text(audit_rows(app))
    assert new_key not in everything and old_key not in everything
    assert rows[0]["before"]["key_hash"] == rows[0]["after"]["key_hash"] == "***"


# --- sign-in events ------------------------------------------------------------------------

def test_sign_in_success_failure_and_sign_out_are_audited(app, client, admin_account, make_account):
    user = make_account(role="responder", email="signer@example.test")
    start = last_audit_id(app)
    assert login(client, user.email, "wrong-password-guess").status_code == 401
    login(client, "nobody@example.test", "whatever-it-is")
    assert login(client, user.email).status_code in (302, 303)
    token = csrf_token_from(client.get("/dashboard").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    rows = audit_rows(app, start)
    assert [(r["action"], r["object_id"]) for r in rows] == [
        ("auth.signin_failed", str(user.id)), ("auth.signin_failed", None),
        ("auth.signin_succeeded", str(user.id)), ("auth.signed_out", str(user.id))]
    assert rows[0]["after"] == {"email": user.email, "reason": "wrong_credentials"}
    assert rows[0]["actor_user_id"] is None and rows[0]["actor_label"] == "anonymous"
    assert rows[2]["actor_user_id"] == user.id and rows[2]["via"] == "ui"
    assert all(r["client_address"] and r["request_id"] for r in rows)
    assert "wrong-password-guess" not in row_text(rows) and PASSWORD not in row_text(rows)


def test_api_basic_auth_failures_are_audited_successes_are_not(app, client, make_account):
    user = make_account(role="viewer", email="api-signer@example.test")
    start = last_audit_id(app)
    assert client.get("/api/v1/teams", headers=basic(user.email, "not-the-password")).status_code == 401
    assert client.get("/api/v1/teams", headers=basic(user.email)).status_code == 200
    rows = audit_rows(app, start)
    assert [(r["action"], r["via"]) for r in rows] == [("auth.signin_failed", "api")]


# --- who may read it ------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_only_admins_read_the_audit_log(app, client, admin_account, make_account, role):
    user = make_account(role=role)
    assert client.get("/api/v1/audit-events", headers=basic(user.email)).status_code == 403
    login(client, user.email)
    assert client.get("/audit").status_code == 403
    assert "Audit log" not in client.get("/dashboard").get_data(as_text=True)


def test_admin_reads_filters_and_pages_through_the_api_and_the_page(app, client, admin_account):
    with app.app_context():
        for i in range(5):
            teams.create_team(db.session, name=f"Paged team {i}")
        db.session.commit()
    headers = basic(admin_account.email)
    first = client.get("/api/v1/audit-events?object_type=team&limit=2", headers=headers)
    assert first.status_code == 200
    body = first.get_json()
    assert [e["action"] for e in body["items"]] == ["team.created", "team.created"] and body["next"]
    seen = [e["after"]["name"] for e in body["items"]]
    while body["next"]:
        body = client.get(body["next"], headers=headers).get_json()
        seen += [e["after"]["name"] for e in body["items"]]
    assert seen == [f"Paged team {i}" for i in range(5)]
    team_id = first.get_json()["items"][0]["object_id"]
    one = client.get(f"/api/v1/audit-events?object_type=team&object_id={team_id}", headers=headers).get_json()["items"]
    assert len(one) == 1
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert client.get(f"/api/v1/audit-events?since={future}", headers=headers).get_json()["items"] == []
    bad = client.get("/api/v1/audit-events?since=yesterday&actor=x&actor_kind=robot", headers=headers)
    assert bad.status_code == 422 and set(bad.get_json()["error"]["fields"]) == {"since", "actor", "actor_kind"}

    login(client, admin_account.email)
    page = client.get("/audit?object_type=team")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and html.count("team.created") == 5 and "Audit log" in html
    assert client.get("/audit?since=not-a-time").status_code == 422


def test_no_route_changes_or_deletes_audit_rows(app, client, admin_account):
    headers = basic(admin_account.email)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = client.open("/api/v1/audit-events", method=method, headers=headers, json={})
        assert response.status_code == 405
        assert client.open("/api/v1/audit-events/1", method=method, headers=headers, json={}).status_code == 404


def test_the_database_refuses_to_change_an_audit_row(app):
    with app.app_context():
        teams.create_team(db.session, name="Immutable")
        db.session.commit()
        with pytest.raises(DBAPIError):
            db.session.execute(text("UPDATE audit_events SET action = 'forged'"))
        db.session.rollback()
        row = db.session.query(AuditEvent).first()
        row.action = "forged"
        with pytest.raises(RuntimeError):
            db.session.flush()
        db.session.rollback()


# --- CLI ------------------------------------------------------------------------------------

def test_cli_changes_are_recorded_as_cli_and_exported_as_json_lines(app, runner):
    result = runner.invoke(args=["pagerpal", "create-admin", "--email", "cli-admin@example.test",
                                 "--password-stdin"], input="cli-admin-password\n")
    assert result.exit_code == 0, result.output
    export = runner.invoke(args=["pagerpal", "audit-export"])
    assert export.exit_code == 0, export.output
    lines = [json.loads(line) for line in export.output.splitlines() if line.strip()]
    created = [e for e in lines if e["action"] == "user.created" and e["after"]["email"] == "cli-admin@example.test"]
    assert len(created) == 1 and created[0]["actor_kind"] == "cli" and created[0]["via"] == "cli"
    assert "cli-admin-password" not in export.output
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert runner.invoke(args=["pagerpal", "audit-export", "--since", future]).output.strip() == ""
    assert runner.invoke(args=["pagerpal", "audit-export", "--until", "soon"]).exit_code == 1


# --- core rules -----------------------------------------------------------------------------

def test_rolled_back_changes_leave_no_audit_row(session):
    teams.create_team(session, name="Never committed")
    session.rollback()
    teams.create_team(session, name="Committed")
    session.commit()
    names = [row.after["name"] for row in session.query(AuditEvent).filter_by(action="team.created")]
    assert names == ["Committed"]


def test_secret_fields_are_masked_at_any_depth(session):
    audit.record_audit(session, action="test.masked", object_type="thing", object_id=1,
                       before={"password": "hunter2-hunter2", "nested": {"api_key": "k-1", "note": "ok"}},
                       after={"password": "another-one-22", "nested": {"api_key": "k-2", "note": "ok"},
                              "token_hash": None})
    session.commit()
    row = session.query(AuditEvent).filter_by(action="test.masked").one()
    assert row.before == {"password": "***", "nested": {"api_key": "***", "note": "ok"}}
    # Changed fields only: token_hash is None on both sides, so it is left out.
    assert row.after == {"password": "***", "nested": {"api_key": "***", "note": "ok"}}


def test_retention_deletes_only_rows_older_than_the_setting(session):
    now = datetime(2026, 6, 1, tzinfo=UTC)
    for age in (400, 366, 364, 1):
        audit.record_audit(session, action=f"test.age{age}", object_type="thing", object_id=age,
                           now=now - timedelta(days=age))
    session.commit()
    assert audit.purge_old_audit_events(session, now=now, retention_days=365) == 2
    session.commit()
    assert sorted(r.action for r in session.query(AuditEvent)) == ["test.age1", "test.age364"]


def test_the_worker_chores_step_applies_audit_retention(database_url):
    from pagerpal_core.settings import Settings
    from pagerpal_worker.main import make_context
    from pagerpal_worker.steps import chores

    settings = Settings.from_env({"DATABASE_URL": database_url, "AUDIT_RETENTION_DAYS": "30"})
    ctx = make_context(settings)
    factory = ctx.session_factory
    now = datetime.now(UTC)
    with factory() as session:
        audit.record_audit(session, action="test.old", object_type="thing", now=now - timedelta(days=40))
        audit.record_audit(session, action="test.new", object_type="thing", now=now - timedelta(days=1))
        session.commit()
    assert chores.run(ctx, now, limit=10) >= 1
    with factory() as session:
        assert [r.action for r in session.query(AuditEvent).filter(AuditEvent.action.like("test.%"))] == ["test.new"]
    factory.kw["bind"].dispose()
