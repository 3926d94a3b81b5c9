"""Secret calendar feed URLs (finding 14): /calendar/<token>.ics without a session cookie."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from pagerpal_core.models import AuditEvent, CalendarFeedToken
from pagerpal_core.security import sha256_hex
from pagerpal_core.services.schedules import create_entry, create_schedule
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from tests.conftest import csrf_token_from
from tests.web.conftest import login

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")

URL_RE = re.compile(r'<code id="feed-url" class="secret">([^<]+)</code>')


@pytest.fixture
def on_call(app, make_account):
    """A responder with one shift tomorrow on the schedule "Primary" (and an admin, so /login signs in)."""
    make_account(role="admin")
    user = make_account(role="responder", name="Ada Oncall")
    with app.app_context():
        schedule = create_schedule(db.session, name="Primary", now=utcnow())
        start = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        create_entry(db.session, schedule, user=user.id, starts_at=start, ends_at=start + timedelta(hours=8),
                     now=utcnow())
        db.session.commit()
    return user


def post_form(client, page: str, action: str):
    token = csrf_token_from(client.get(page).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token})


def create_feed(client, user_id: int) -> str:
    """Press "Create feed URL" on the user page; the full URL shown once."""
    response = post_form(client, f"/users/{user_id}", f"/users/{user_id}/calendar-feed")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return URL_RE.search(response.get_data(as_text=True)).group(1)


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def table_counts(app) -> dict:
    with app.app_context():
        out = {m.__tablename__: db.session.scalar(select(func.count()).select_from(m))
               for m in (CalendarFeedToken, AuditEvent)}
        db.session.remove()
        return out


def test_user_creates_a_feed_url_that_works_without_a_session(app, client, on_call):
    login(client, on_call.email)
    url = create_feed(client, on_call.id)
    assert re.fullmatch(r"http.*/calendar/ppc_[A-Za-z0-9_-]{40,}\.ics", url)
    with app.app_context():  # stored hashed, never in full
        row = db.session.scalar(select(CalendarFeedToken))
        token = url.rsplit("/", 1)[1][:-len(".ics")]
        assert row.token_hash == sha256_hex(token) and token not in (row.token_hash, row.token_suffix)
    page = client.get(f"/users/{on_call.id}").get_data(as_text=True)
    assert token not in page and "ppc_…" in page  # shown once; the page shows it masked
    anonymous = app.test_client()
    feed = anonymous.get(path_of(url))
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    assert "BEGIN:VCALENDAR" in feed.get_data(as_text=True) and "Primary" in feed.get_data(as_text=True)
    assert "no-store" in feed.headers["Cache-Control"]
    # Without the token the session-only feed still needs a sign-in.
    assert anonymous.get(f"/users/{on_call.id}.ics").status_code in (302, 401)


def test_regenerate_replaces_and_revoke_removes_the_url(app, client, on_call):
    login(client, on_call.email)
    first = create_feed(client, on_call.id)
    second = create_feed(client, on_call.id)
    anonymous = app.test_client()
    assert anonymous.get(path_of(first)).status_code == 404
    assert anonymous.get(path_of(second)).status_code == 200
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("calendar_feed.%"))
                                     .order_by(AuditEvent.id)).all()
        assert actions == ["calendar_feed.created", "calendar_feed.regenerated"]
    revoked = post_form(client, f"/users/{on_call.id}", f"/users/{on_call.id}/calendar-feed/revoke")
    assert revoked.status_code == 303
    assert anonymous.get(path_of(second)).status_code == 404
    assert table_counts(app)["calendar_feed_tokens"] == 0


@pytest.mark.parametrize("token", ["ppc_" + "A" * 43, "ppc_", "nope", "ppk_" + "A" * 43, "ppc_" + "x" * 500,
                                   "%00", "ppc_%0d%0a"])
def test_wrong_token_is_404_and_writes_nothing(app, client, on_call, token):
    login(client, on_call.email)
    create_feed(client, on_call.id)
    before = table_counts(app)
    response = app.test_client().get(f"/calendar/{token}.ics")
    assert response.status_code == 404
    assert table_counts(app) == before


def test_deactivated_users_feed_is_404(app, client, on_call):
    login(client, on_call.email)
    url = create_feed(client, on_call.id)
    with app.app_context():
        from pagerpal_core.models import User
        db.session.get(User, on_call.id).active = False
        db.session.commit()
    assert app.test_client().get(path_of(url)).status_code == 404


def test_feed_requests_are_rate_limited_per_address(app, client, on_call):
    login(client, on_call.email)
    url = create_feed(client, on_call.id)
    anonymous = app.test_client()
    statuses = [anonymous.get(f"/calendar/ppc_wrong{i}.ics").status_code for i in range(30)]
    assert set(statuses) == {404}
    limited = anonymous.get(path_of(url))  # even the right token, from an address over the limit
    assert limited.status_code == 429 and limited.headers["Retry-After"]
    other = app.test_client()
    assert other.get(path_of(url), environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200


def test_only_the_user_or_an_admin_can_create_or_revoke(app, client, on_call, make_account):
    other = make_account(role="responder")
    login(client, other.email)
    page = f"/users/{other.id}"
    assert post_form(client, page, f"/users/{on_call.id}/calendar-feed").status_code == 403
    assert post_form(client, page, f"/users/{on_call.id}/calendar-feed/revoke").status_code == 403
    assert table_counts(app)["calendar_feed_tokens"] == 0
    admin = make_account(role="admin")
    admin_client = app.test_client()
    login(admin_client, admin.email)
    assert create_feed(admin_client, on_call.id)


def test_forms_need_the_csrf_token(app, client, on_call):
    login(client, on_call.email)
    assert client.post(f"/users/{on_call.id}/calendar-feed", data={}).status_code == 400
    assert table_counts(app)["calendar_feed_tokens"] == 0
