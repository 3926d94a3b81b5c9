"""The end-to-end self-test: through the real worker (run_cycle), the web over a real socket and the
local fake Infobip server. A passing run records success; a broken sender opens a real incident on the
admins' policy; the next passing run resolves it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from pagerpal_core.models import AlertSource, Incident, Notification
from pagerpal_core.services.self_test import FAILURE_EXTERNAL_ID, SOURCE_NAME, read_self_test
from pagerpal_core.timeutil import utcnow
from pagerpal_worker.loop import run_cycle
from tests.core.routing_setup import make_world
from tests.worker.conftest import read

# Reads and arithmetic over rows the other tests store on both backends: SQLite is enough here.
pytestmark = pytest.mark.backends("sqlite")

DESTINATION = "+14155550142"


@pytest.fixture
def world(session):
    """Ids only: touching an expired ORM object later would open a transaction (on SQLite, the write
    lock) that the worker under test would then wait for."""
    world = make_world(session)
    session.commit()
    ids = {"policy_id": world.policy.id, "ada_id": world.ada.id}
    session.commit()
    return ids


def _ctx(make_ctx, fake_infobip, live_server, **extra):
    return make_ctx(fake_infobip.url, PAGERPAL_BASE_URL=live_server.url, SELF_TEST_INTERVAL_MINUTES="15",
                    SELF_TEST_DESTINATION=DESTINATION, **extra)


def _state(session):
    return read(session, lambda: read_self_test(session))


def _incidents(session):
    return read(session, lambda: list(session.scalars(select(Incident).order_by(Incident.id))))


def test_a_self_test_through_the_real_worker_records_success(session, world, make_ctx, fake_infobip, live_server):
    ctx = _ctx(make_ctx, fake_infobip, live_server)
    now = utcnow()
    report = run_cycle(ctx, now)
    assert report.processed.get("self_test") == 1, report.errors

    state = _state(session)
    assert state.ok is True and state.error is None and state.duration_ms is not None and state.duration_ms > 0
    assert state.line(now + timedelta(minutes=2)).startswith("last end-to-end page: 2 min ago, ")
    # The synthetic alert came in over HTTP as the internal source, was paged and resolved.
    (incident,) = _incidents(session)
    assert incident.id == state.incident_id and incident.status == "resolved"
    assert incident.external_id.startswith("pagerpal-self-test-") and not incident.unrouted
    source = read(session, lambda: session.get(AlertSource, incident.alert_source_id))
    assert source.name == SOURCE_NAME and source.policy_id is None
    page = read(session, lambda: session.scalars(select(Notification).where(
        Notification.incident_id == incident.id)).one())
    assert page.status == "sent" and page.destination == DESTINATION and page.user_id is None
    sent_to = [d.lstrip("+") for req in list(fake_infobip.requests) for d in req.destinations()]
    assert DESTINATION.lstrip("+") in sent_to

    # Not due again within the interval; due once it has passed.
    assert run_cycle(ctx, now + timedelta(minutes=5)).processed.get("self_test") in (None, 0)
    assert run_cycle(ctx, now + timedelta(minutes=16)).processed.get("self_test") == 1
    assert len(_incidents(session)) == 2


def test_a_broken_sender_makes_the_self_test_open_an_incident(session, world, make_ctx, fake_infobip, live_server):
    ctx = _ctx(make_ctx, fake_infobip, live_server)
    fake_infobip.fail_next(500, count=3)          # the provider is down
    now = utcnow()
    run_cycle(ctx, now)

    state = _state(session)
    assert state.ok is False and "was not sent" in state.error
    failure = read(session, lambda: session.scalars(select(Incident).where(
        Incident.external_id == FAILURE_EXTERNAL_ID)).one())
    assert failure.status == "triggered" and failure.policy_id == world["policy_id"]
    assert failure.title.startswith("PagerPal self-test failed: the sms page was not sent")
    assert state.failure_incident_id == failure.id
    # A real incident: the admins' policy pages its level 1 (Ada, on call in "primary").
    pages = read(session, lambda: list(session.scalars(select(Notification).where(
        Notification.incident_id == failure.id))))
    assert pages and {p.user_id for p in pages} == {world["ada_id"]}

    # A second failure adds to the same incident instead of opening another.
    fake_infobip.fail_next(500, count=3)
    run_cycle(ctx, now + timedelta(minutes=16))
    failures = read(session, lambda: list(session.scalars(select(Incident).where(
        Incident.external_id == FAILURE_EXTERNAL_ID))))
    assert len(failures) == 1

    # The sender works again: the next run passes and resolves the failure incident.
    fake_infobip.clear()
    run_cycle(ctx, now + timedelta(minutes=32))
    assert _state(session).ok is True
    assert read(session, lambda: session.get(Incident, failure.id).status) == "resolved"


def test_an_overdue_self_test_opens_an_incident(session, world, make_ctx, fake_infobip, live_server):
    from pagerpal_core.services import self_test as svc

    ctx = _ctx(make_ctx, fake_infobip, live_server)
    now = utcnow()
    run_cycle(ctx, now)
    assert _state(session).ok is True
    # Nothing ran for three intervals (say the step was switched off): the check pages.
    later = now + timedelta(minutes=46)
    opened = svc.check_overdue(session, settings=ctx.settings, now=later, base_url=ctx.settings.base_url)
    session.commit()
    failure = read(session, lambda: session.get(Incident, opened))
    assert failure.external_id == FAILURE_EXTERNAL_ID and "overdue" in failure.title
    # Checked again: still one incident.
    assert svc.check_overdue(session, settings=ctx.settings, now=later, base_url=ctx.settings.base_url) is None
    session.commit()


def test_the_self_test_is_off_by_default(make_ctx, world, session):
    ctx = make_ctx()
    assert "self_test" not in run_cycle(ctx, utcnow()).processed


def test_flask_pagerpal_self_test_runs_once(make_app, world, fake_infobip, live_server, session):
    from tests.worker.conftest import FAKE_KEY

    app = make_app(PAGERPAL_BASE_URL=live_server.url, SELF_TEST_DESTINATION=DESTINATION,
                   NOTIFICATION_SENDING_ENABLED="true", INFOBIP_BASE_URL=fake_infobip.url, INFOBIP_API_KEY=FAKE_KEY,
                   INFOBIP_SMS_SENDER="PagerPal")
    result = app.test_cli_runner().invoke(args=["pagerpal", "self-test"])
    assert result.exit_code == 0, result.output
    assert "Self-test passed: page sent in" in result.output
    assert _state(session).ok is True


def test_dashboard_and_settings_show_the_last_end_to_end_page(app, world, make_ctx, fake_infobip, live_server):
    import html
    import re

    from pagerpal_web.extensions import db
    from tests.factories import make_user
    from tests.web.test_ui_pages import signed_in

    run_cycle(_ctx(make_ctx, fake_infobip, live_server), utcnow())
    with app.app_context():
        admin = make_user(db.session, role="admin", name="Admin")
        db.session.commit()
        email = admin.email
    client = signed_in(app, email)

    def text(path):
        return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", client.get(path).get_data(as_text=True))))

    assert re.search(r"last end-to-end page: \d+ s ago, \d+ ms", text("/dashboard"))
    settings_text = text("/settings")
    assert "End-to-end self-test" in settings_text and "passed" in settings_text
    assert re.search(r"last end-to-end page: \d+ s ago, \d+ ms", settings_text)
