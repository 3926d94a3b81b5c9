"""Robustness sweep: bad input to the UI forms and the webhooks gets a 4xx (or a re-rendered form),
never a 500, and a refused request writes nothing.

The management API is fuzzed separately (tests/api/test_schemathesis.py); this covers the rest. The
UI sweep discovers each form's fields from the page that renders it, then sends one bad value per
field with every other field left at the page's own valid value, plus the empty form and
path ids that do not exist or overflow the database's integers.
"""

from __future__ import annotations

import dataclasses
import json
import re
from functools import lru_cache
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from sqlalchemy import text

from pagerpal_core.db import Base
from pagerpal_core.models import Schedule
from pagerpal_core.services import schedules
from pagerpal_core.services.alert_sources import create_alert_source
from pagerpal_core.timeutil import utcnow
from pagerpal_web.config import settings
from pagerpal_web.extensions import db
from tests import dbutil
from tests.conftest import app_overrides
from tests.web.test_ui_pages import MAIN_PAGES, build_world, fill, signed_in

# Form validation does not depend on the database; the webhook sweep runs on both backends.
pytestmark = pytest.mark.backends("sqlite")

# Tables a refused request may still touch: sign-in throttling is bookkeeping, not a write of the input.
BOOKKEEPING_TABLES = {"auth_throttle", "app_state", "job_status"}

BAD_VALUES = {
    "empty": "",
    "text": "abc",
    "huge": "x" * 100_000,
    "nul": "a\x00b",
    "spaces": "   ",
}
# Probes that only mean something to a field that is parsed as a number or a time: sent to
# every field whose kind is not plain text (a select or hidden id may well be parsed as one).
NUMBER_VALUES = {"over_int32": str(2**31), "over_int64": str(2**63), "negative": "-1"}
TIME_VALUES = {"odd_date": "31/12/2024 25:61", "iso_tz_date": "2024-02-30T10:00:00+99:00"}
TEXT_KINDS = {"text", "textarea", "email", "password", "search", "tel", "url"}
# A lone surrogate cannot be encoded by the test client, so it goes as raw (invalid) UTF-8 bytes.
RAW_BAD_VALUES = {"lone_surrogate": "%ED%A0%80", "invalid_utf8": "%FF%FE"}

ID_VALUES = ["999999", str(2**31), str(2**63), str(2**64 + 7)]


class _Forms(HTMLParser):
    """Every POST form on a page: its action, its (name, value) fields as the browser would send,
    and each field's kind (the input type, "select" or "textarea")."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._form = None
        self._select = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "get").lower() == "post":
            self._form = {"action": a.get("action") or "", "fields": {}, "kinds": {}}
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag == "input" and a.get("name"):
            kind = (a.get("type") or "text").lower()
            self._form["kinds"][a["name"]] = kind
            if kind in ("checkbox", "radio") and "checked" not in a:
                self._form["fields"].setdefault(a["name"], None)
                return
            self._form["fields"][a["name"]] = a.get("value") or ""
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            self._form["kinds"][self._select] = "select"
            self._form["fields"].setdefault(self._select, None)
        elif tag == "option" and self._select:
            value = a.get("value", "")
            fields = self._form["fields"]
            if fields.get(self._select) is None or "selected" in a:
                fields[self._select] = value
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._form["kinds"][self._textarea] = "textarea"
            self._form["fields"][self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def page_forms(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def row_counts(app) -> dict:
    """Rows per table (bookkeeping tables aside), read in one query."""
    tables = [t.name for t in Base.metadata.sorted_tables if t.name not in BOOKKEEPING_TABLES]
    with app.app_context():
        row = db.session.execute(text("SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in tables))).one()
        db.session.remove()
    return dict(zip(tables, row, strict=True))


def encode(fields: dict, raw: dict | None = None) -> bytes:
    """A form body; `raw` values are already percent-encoded (used for invalid UTF-8)."""
    parts = [f"{quote(k)}={quote(v)}" for k, v in fields.items() if v is not None]
    parts += [f"{quote(k)}={v}" for k, v in (raw or {}).items()]
    return "&".join(parts).encode("ascii")


def discover(app, world):
    """The form (fields and kinds) of every POST action an admin sees on the main pages."""
    client = signed_in(app, world.admin_email)
    found = {}
    for path in MAIN_PAGES:
        html = client.get(fill(path, world)).get_data(as_text=True)
        for form in page_forms(html):
            if form["action"] and form["action"] != "/logout":
                found.setdefault(form["action"], form)
    return found


# Valid values for blank fields, so one bad field at a time reaches past the others' validation.
VALID_FILLERS = {"name": "Probe name", "email": "probe@example.test", "password": "probe-password-123",
                 "starts_at": "2031-01-01T10:00", "ends_at": "2031-01-02T10:00", "start_date": "2031-01-01",
                 "text": "probe note", "destination": "+14155550199", "reason": "probe",
                 "description": "probe", "note": "probe"}

# Forms the main pages do not render for the sweep's world (or render elsewhere): their fields by hand.
EXTRA_ACTIONS = {
    "/incidents/{incident_id}/reopen": {"csrf_token": None, "reopen-acting_as": "{responder_id}"},
    "/users/{paged_id}/deactivate": {"csrf_token": None},
    "/users/{paged_id}/reactivate": {"csrf_token": None},
    "/alert-sources/{source_id}/regenerate": {"csrf_token": None},
    "/schedules/{schedule_id}/rotations/1/delete": {"csrf_token": None},
    "/schedules/{schedule_id}/rotations/1/participants": {"csrf_token": None,
                                                          "participant-user_id": "{paged_id}"},
    "/schedules/{schedule_id}/rotations/1/participants/1/remove": {"csrf_token": None},
    "/schedules/{schedule_id}/rotations/1/participants/1/move": {"csrf_token": None, "direction": "up"},
    "/profile/contacts/1/delete": {"csrf_token": None},
    "/profile/contacts/1/test": {"csrf_token": None},
    "/users/{paged_id}/edit": {"csrf_token": None, "user-name": "", "user-email": "", "user-timezone": "UTC",
                               "user-password": ""},
    "/login": {"csrf_token": None, "email": "nobody@example.test", "password": "wrong-password-1"},
    "/heartbeats": {"csrf_token": None, "name": "probe-heartbeat", "interval_seconds": "60", "grace_seconds": "0",
                    "escalation_policy_id": "{policy_id}"},
    "/heartbeats/1/delete": {"csrf_token": None},
    "/users/{paged_id}/calendar-feed": {"csrf_token": None},
    "/users/{paged_id}/calendar-feed/revoke": {"csrf_token": None},
    "/maintenance": {"csrf_token": None, "reason": "probe", "starts_at": "2031-01-01T10:00",
                     "ends_at": "2031-01-02T10:00", "alert_source_ids": "{source_id}", "policy_ids": "{policy_id}"},
    "/maintenance/1/end": {"csrf_token": None},
    "/maintenance/1/delete": {"csrf_token": None},
}

UI_POST_ENDPOINTS = [
    "ui.create_alert_source_view", "ui.update_alert_source_view", "ui.toggle_alert_source_view",
    "ui.delete_alert_source_view", "ui.regenerate_alert_source_view", "ui.test_alert_source_view",
    "ui.create_policy_view", "ui.update_policy_view", "ui.delete_policy_view", "ui.add_level_view",
    "ui.update_level_view", "ui.delete_level_view", "ui.add_target_view", "ui.remove_target_view",
    "ui.incident_acknowledge", "ui.incident_escalate", "ui.incident_note", "ui.incident_retry_notification",
    "ui.incident_reassign", "ui.incident_reopen", "ui.incident_resolve", "ui.login",
    "ui.incident_snooze", "ui.incident_bulk_action",
    "ui.create_schedule_view", "ui.delete_schedule_view", "ui.add_entry_view", "ui.delete_entry_view",
    "ui.add_override_view", "ui.delete_override_view", "ui.add_rotation_view", "ui.delete_rotation_view",
    "ui.add_participant_view", "ui.remove_participant_view", "ui.update_rotation_view", "ui.move_participant_view",
    "ui.profile_update", "ui.profile_password", "ui.profile_add_contact", "ui.profile_delete_contact",
    "ui.profile_test_contact", "ui.user_edit_save",
    "ui.create_team_view", "ui.update_team_view",
    "ui.delete_team_view", "ui.add_team_member_view", "ui.remove_team_member_view", "ui.create_user_view",
    "ui.user_add_contact", "ui.user_delete_contact", "ui.user_deactivate", "ui.user_reactivate",
    "ui.user_role", "ui.create_heartbeat_view", "ui.delete_heartbeat_view",
    "ui.create_calendar_feed_view", "ui.revoke_calendar_feed_view",
    "ui.user_notification_rules", "ui.user_test_contact", "ui.team_webhook_view",
    "ui.create_maintenance_view", "ui.end_maintenance_view", "ui.delete_maintenance_view",
]


def build_sweep_world(app):
    """The UI pages' world plus a rotation, so the rotation forms are on the schedule page too."""
    world = build_world(app)
    with app.app_context():
        schedule = db.session.get(Schedule, world.schedule_id)
        schedules.create_rotation(db.session, schedule, start_date="2031-01-05", name="Weekly",
                                  participants=[world.paged_id], now=utcnow())
        db.session.commit()
        db.session.remove()
    return world


@pytest.fixture(scope="session")
def sqlite_world(sqlite_template, tmp_path_factory):
    """A SQLite file holding the sweep's world, built once per process, and that world's ids."""
    from pagerpal_web import create_app

    directory = tmp_path_factory.mktemp("sweep-world")
    url = dbutil.clone_sqlite(sqlite_template, directory)
    app = create_app(app_overrides(url, directory))
    world = build_sweep_world(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()  # the last connection checkpoints the WAL into the file
    return url.removeprefix("sqlite:///"), world


@pytest.fixture
def database_url(request, backend, tmp_path):
    """Each test still gets a database of its own: on SQLite a copy of the file the world was built
    in once (the same world every test would build), on PostgreSQL a pooled empty one."""
    if backend == "sqlite":
        return dbutil.clone_sqlite(request.getfixturevalue("sqlite_world")[0], tmp_path)
    return request.getfixturevalue("pg_database_url")


@pytest.fixture
def world(request, backend, app):
    if backend == "sqlite":
        return request.getfixturevalue("sqlite_world")[1]
    return build_sweep_world(app)


def test_sweep_covers_every_ui_post_route(app):
    """A new UI POST route must join the sweep."""
    posted = {rule.endpoint for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith("ui.") and "POST" in rule.methods and rule.endpoint != "ui.logout"}
    assert posted == set(UI_POST_ENDPOINTS)


def _endpoint_of(app, action: str) -> str:
    return app.url_map.bind("pagerpal.test").match(action, method="POST")[0]


_DISCOVERED: dict = {}


def _actions(app, world) -> dict:
    """Every POST form of the world's pages. Each sweep builds the same world with the same ids
    on a fresh database, so the forms are discovered once per process and world."""
    key = (settings(app).database_url.split(":", 1)[0], repr(dataclasses.replace(world, full_key="")))
    if key not in _DISCOVERED:
        actions = discover(app, world)
        for template, fields in EXTRA_ACTIONS.items():
            # Kinds unknown: every probe goes to every field.
            actions.setdefault(fill(template, world), {"fields": {k: fill(v, world) if v else v
                                                                  for k, v in fields.items()}, "kinds": {}})
        _DISCOVERED[key] = actions
    return _DISCOVERED[key]


def _valid(fields: dict) -> dict:
    out = {}
    for key, value in fields.items():
        if key.endswith("csrf_token"):
            continue
        base = key.split("-", 1)[-1]
        out[key] = value if value else VALID_FILLERS.get(base, value)
    return out


def _probes(kind: str | None) -> dict:
    """The bad values worth sending to a field of this kind (None: unknown, so all of them)."""
    if kind in TEXT_KINDS:
        return BAD_VALUES
    if kind in ("date", "datetime-local", "time"):
        return {**BAD_VALUES, **TIME_VALUES}
    if kind in ("number", "select", "hidden", "checkbox", "radio"):
        return {**BAD_VALUES, **NUMBER_VALUES}
    return {**BAD_VALUES, **NUMBER_VALUES, **TIME_VALUES}


def _variants(action: str, form: dict):
    """(label, path, fields, raw) of each probe for one form."""
    valid = _valid(form["fields"])
    yield "empty form", action, {}, None
    for key in valid:
        for label, bad in _probes(form["kinds"].get(key)).items():
            yield f"{key}={label}", action, {**valid, key: bad}, None
        for label, raw in RAW_BAD_VALUES.items():
            yield f"{key}={label}", action, {k: v for k, v in valid.items() if k != key}, {key: raw}
        yield f"{key} missing", action, {k: v for k, v in valid.items() if k != key}, None
    ids = [m.span() for m in re.finditer(r"(?<=/)\d+(?=/|$)", action)]
    for start, end in ids:
        for bad_id in ID_VALUES:
            yield f"id {action[start:end]}->{bad_id}", action[:start] + bad_id + action[end:], valid, None


@pytest.mark.parametrize("endpoint", UI_POST_ENDPOINTS)
def test_ui_post_rejects_bad_input_without_500_or_writes(app, world, endpoint):
    _sweep(app, world, endpoint)


# PostgreSQL refuses NUL in text where SQLite stores it: the text probes run there too.
TEXT_FORMS = ["ui.create_alert_source_view", "ui.update_alert_source_view", "ui.create_policy_view",
              "ui.update_policy_view", "ui.incident_note", "ui.incident_resolve", "ui.create_schedule_view",
              "ui.add_override_view", "ui.add_rotation_view", "ui.create_team_view", "ui.update_team_view",
              "ui.create_user_view", "ui.user_add_contact", "ui.create_heartbeat_view"]


@pytest.mark.backends("postgresql")
@pytest.mark.parametrize("endpoint", TEXT_FORMS)
def test_ui_text_fields_refuse_unstorable_text_on_postgresql(app, world, endpoint):
    _sweep(app, world, endpoint, only=_unstorable_probes(app))


def _unstorable_probes(app) -> tuple:
    """The probes whose text PostgreSQL may refuse where SQLite stores it: NUL, and the raw
    invalid UTF-8 ones only if form parsing turns them into non-ASCII text. Werkzeug 3 keeps an
    undecodable %-escape as its literal ASCII ("%FF%FE"), which every database stores, so on
    PostgreSQL they would only repeat what the SQLite sweep shows."""
    from flask import request

    labels = ["=nul"]
    for label, raw in RAW_BAD_VALUES.items():
        with app.test_request_context("/", method="POST", data=encode({}, {"field": raw}),
                                      content_type="application/x-www-form-urlencoded"):
            if not request.form["field"].isascii():
                labels.append(f"={label}")
    return tuple(labels)


def _sweep(app, world, endpoint: str, only: tuple = ()) -> None:
    actions = [a for a in _actions(app, world).items() if _endpoint_of(app, a[0]) == endpoint]
    assert actions, f"no form found for {endpoint}"
    action, form = actions[0]
    client = signed_in(app, world.admin_email)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"',
                      client.get("/settings").get_data(as_text=True)).group(1)
    problems = []
    before = row_counts(app)  # each probe's counts after are the next one's before: nothing else writes
    for label, path, data, raw in _variants(action, form):
        if only and not label.endswith(only):
            continue
        body = encode({**data, "csrf_token": token}, raw)
        response = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
        status = response.status_code
        after = row_counts(app)
        if status >= 500:
            problems.append(f"{label}: {status}")
        elif 400 <= status < 500 and after != before:
            problems.append(f"{label}: {status} but rows changed")
        if endpoint == "ui.login" and status == 302:
            client = signed_in(app, world.admin_email)
            after = row_counts(app)
        before = after
    assert not problems, f"{endpoint} {action}:\n" + "\n".join(problems)


# --- GET pages with odd query strings ----------------------------------------------------

ODD_QUERIES = ["page=-1", "page=abc", "page=99999999999999999999", "per_page=0", "per_page=-5",
               "per_page=100000", "limit=abc", "since=garbage", "until=2024-13-45", "since=%00",
               "since=9999-12-31T23:59:59Z&until=0001-01-01", "status=%ED%A0%80", "status=nonsense",
               "severity=" + "x" * 5000, "q=a%00b", "source_id=abc", "source_id=99999999999999999999",
               "team_id=-1", "user_id=%FF", "sort=;drop", "order=sideways", "page=1&page=2",
               "acting_as=abc", "from=yesterday", "to=tomorrow", "at=garbage", "week=abc", "start=31/12/2024"]


def test_get_pages_survive_odd_query_strings(app, world):
    reads = _query_string_reads(app)
    client = signed_in(app, world.admin_email)
    paths = [fill(p, world) for p in MAIN_PAGES] + [
        f"/schedules/{world.schedule_id}.ics", f"/users/{world.paged_id}.ics",
        f"/alert-sources/{world.source_id}/regenerate", f"/users/{world.paged_id}/deactivate",
        "/login", "/health"]
    problems = []
    readers = set()
    for path in paths:
        for query in ODD_QUERIES:
            reads.clear()
            status = client.get(f"{path}?{query}").status_code
            if status >= 500:
                problems.append(f"{path}?{query[:60]}: {status}")
            if not reads:
                # The page never looked at its query string (nor its args, full path or URL):
                # it takes the same path whatever the string is, so the other probes would repeat this one.
                break
            readers.add(path)
    assert not problems, "\n".join(problems)
    # The tracking sees the pages that do read their query: the incident list filters and pages by it.
    assert "/incidents" in readers and f"/escalation-policies/{world.policy_id}" in readers, readers


def _query_string_reads(app) -> list:
    """A list that gets an entry each time a request's query string is read after the request is
    built. Werkzeug's args, values, full_path and url all read it through `query_string`."""
    reads: list = []

    class TrackingRequest(app.request_class):
        @property
        def query_string(self):
            reads.append(self.path)
            return self.__dict__["_tracked_query_string"]

        @query_string.setter
        def query_string(self, value):
            self.__dict__["_tracked_query_string"] = value

    app.request_class = TrackingRequest
    return reads


# --- webhooks -----------------------------------------------------------------------------

WEBHOOKS = {"generic": "/api/v1/alerts", "grafana": "/api/v1/webhooks/grafana",
            "alertmanager": "/api/v1/webhooks/alertmanager", "cloudwatch": "/api/v1/webhooks/cloudwatch",
            "pagerduty": "/api/v1/webhooks/pagerduty/v2/enqueue"}
RECEIPTS = "/api/v1/notifications/infobip/receipts"


def _nested(depth: int):
    value = "leaf"
    for _ in range(depth):
        value = {"n": value}
    return value


def _alert(**extra) -> dict:
    return {"labels": {"alertname": "Probe", **extra.pop("labels", {})}, "status": "firing", **extra}


@lru_cache(maxsize=1)
def _bodies() -> dict:
    """label -> (bytes body, content type): each probe carries fields of every format at once."""
    def j(obj) -> bytes:
        return json.dumps(obj).encode()
    many = [_alert(labels={"i": str(i)}) for i in range(10_000)]
    big_labels = {f"k{i}": "v" * 20 for i in range(10_000)}
    bodies = {
        "deep_array": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        "deep_object": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json"),
        "top_number": (b"123", "application/json"),
        "top_string": (b'"text"', "application/json"),
        "top_null": (b"null", "application/json"),
        "top_array": (b"[]", "application/json"),
        "invalid_utf8": (b'{"title": "\xff\xfe", "labels": {"a": "\xc3"}}', "application/json"),
        "nan": (b'{"title": NaN, "severity": Infinity, "external_id": 1e400}', "application/json"),
        "form_encoded": (b"title=disk&severity=critical", "application/x-www-form-urlencoded"),
        "xml": (b"<alert><title>x</title></alert>", "application/xml"),
        "numbers_for_strings": (j({"title": 123, "external_id": 10**30, "severity": 7, "status": 1,
                                   "description": [], "details": "x", "links": 5, "summary": 9,
                                   "source": 1.5, "routing_key": 5, "event_action": 3,
                                   "payload": {"summary": 1, "source": 2, "severity": 3},
                                   "alerts": [1, "x", None, {"labels": 5, "status": []}],
                                   "Type": 4, "Message": 5, "evalMatches": "x", "state": 9}),
                                "application/json"),
        "nul_and_surrogate": (j({"title": "a\x00b\ud800", "external_id": "id\x00\udfff", "severity": "c\x00",
                                 "details": {"k\x00": "v\ud800"}, "summary": "s\x00\ud800",
                                 "payload": {"summary": "s\x00\ud800", "source": "x\x00",
                                             "severity": "critical",
                                             "custom_details": {"\ud800": "\x00"}},
                                 "event_action": "trigger", "dedup_key": "d\x00\ud800",
                                 "alerts": [_alert(labels={"a\x00": "b\ud800"},
                                                   annotations={"summary": "s\x00\ud800"})],
                                 "commonLabels": {"x\x00": "\ud800"}, "ruleName": "r\x00\ud800",
                                 "Type": "Notification", "Message": "m\x00\ud800"}),
                              "application/json"),
        "ten_thousand_alerts": (j({"alerts": many, "status": "firing", "version": "4", "receiver": "r",
                                   "groupKey": "g"}), "application/json"),
        "huge_label_map": (j({"title": "big", "labels": big_labels, "details": big_labels,
                              "commonLabels": big_labels, "alerts": [_alert(labels=big_labels)],
                              "payload": {"summary": "s", "source": "x", "severity": "critical",
                                          "custom_details": big_labels}, "event_action": "trigger"}),
                           "application/json"),
        "deep_details": (j({"title": "deep", "details": _nested(900), "labels": _nested(900),
                            "alerts": [_alert(annotations=_nested(900))], "commonLabels": _nested(900),
                            "payload": {"summary": "s", "source": "x", "severity": "critical",
                                        "custom_details": _nested(900)}, "event_action": "trigger",
                            "Type": "Notification", "Message": json.dumps(_nested(900))}),
                         "application/json"),
        "huge_strings": (j({"title": "t" * 600_000, "external_id": "e" * 100_000}), "application/json"),
        "empty": (b"", "application/json"),
        "whitespace": (b"   \n", "text/plain"),
    }
    return bodies


WEBHOOK_CASES = sorted(_bodies())
# Bodies that are not a JSON object at all: nothing in them can reach a table, so the database
# cannot change how they are refused (the source-key lookup they pass through is the same for
# every body). The rest, whose values a webhook may store, run on both backends.
NOT_AN_OBJECT = ["deep_array", "empty", "form_encoded", "top_array", "top_null", "top_number", "top_string",
                 "whitespace", "xml"]
STORABLE_CASES = [case for case in WEBHOOK_CASES if case not in NOT_AN_OBJECT]


@pytest.fixture
def sources(app, world):
    """One active alert source of every kind, with its key."""
    with app.app_context():
        keys = {kind: create_alert_source(db.session, name=f"probe-{kind}", kind=kind,
                                          policy_id=world.policy_id, now=utcnow()).key for kind in WEBHOOKS}
        db.session.commit()
        db.session.remove()
    return keys


def _check_json_error(response) -> str | None:
    if response.status_code >= 500:
        return f"{response.status_code}: {response.get_data(as_text=True)[:200]}"
    if response.status_code >= 400:
        body = response.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("error"), dict) \
                or not body["error"].get("message"):
            return f"{response.status_code} without a JSON error: {response.get_data(as_text=True)[:200]}"
    return None


@pytest.mark.backends("sqlite", "postgresql")
@pytest.mark.parametrize("case", STORABLE_CASES)
def test_webhooks_answer_bad_bodies_with_4xx_json(app, sources, case):
    _send_to_every_webhook(app, sources, case)


@pytest.mark.parametrize("case", NOT_AN_OBJECT)
def test_webhooks_answer_bodies_that_are_not_objects_with_4xx_json(app, sources, case):
    _send_to_every_webhook(app, sources, case)


def _send_to_every_webhook(app, sources, case: str) -> None:
    client = app.test_client()
    problems = []
    for kind, path in WEBHOOKS.items():
        body, content_type = _bodies()[case]
        before = row_counts(app)
        response = client.post(path, data=body, content_type=content_type,
                               headers={"X-API-Key": sources[kind]})
        problem = _check_json_error(response)
        if problem:
            problems.append(f"{kind}: {problem}")
        elif response.status_code >= 400 and _changed(before, row_counts(app)):
            problems.append(f"{kind}: {response.status_code} but rows changed")
    body, content_type = _bodies()[case]
    before = row_counts(app)
    response = client.post(RECEIPTS, data=body, content_type=content_type)
    problem = _check_json_error(response)
    if problem:
        problems.append(f"receipts: {problem}")
    elif response.status_code >= 400 and _changed(before, row_counts(app)):
        problems.append(f"receipts: {response.status_code} but rows changed")
    assert not problems, "\n".join(problems)


def _changed(before: dict, after: dict) -> bool:
    # A refused webhook still spends its source's token (alert_sources holds the bucket): counts only.
    return before != after
