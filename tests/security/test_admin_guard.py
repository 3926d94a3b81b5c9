"""The last login-capable admin cannot be removed by a race, and first-run setup is never
offered again once an admin existed (issue 12, finding 1)."""

from __future__ import annotations

import threading

import pytest
import requests
from sqlalchemy import delete, func, select, update

from pagerpal_core.errors import Conflict
from pagerpal_core.models import AppState, User
from pagerpal_core.services.users import (
    ADMIN_EXISTED_KEY,
    deactivate_user,
    ensure_login_admin,
    set_role,
    update_user,
)
from pagerpal_web.extensions import db
from tests.conftest import csrf_token_from
from tests.factories import PASSWORD, make_user
from tests.web.conftest import basic

ROUNDS = 20
FIRST_RUN = "Create the first admin"
# What each of the two admins does to the other, round after round: the UI's and API's ways to
# take an admin login away (role change, deactivation, removing the password).
MOVES = [("demote", "demote"), ("deactivate", "deactivate"), ("demote", "deactivate"),
         ("drop_password", "demote"), ("drop_password", "deactivate")]


def login_admins(session) -> int:
    return session.scalar(select(func.count(User.id)).where(
        User.role == "admin", User.active.is_(True), User.password_hash.is_not(None)))


def fresh_admin_pair(factory, tag: str) -> tuple[int, int]:
    """Exactly two login-capable admins: everyone else is made a responder directly in SQL."""
    with factory() as session:
        session.execute(update(User).values(role="responder"))
        first = make_user(session, role="admin", email=f"first-{tag}@example.test")
        second = make_user(session, role="admin", email=f"second-{tag}@example.test")
        session.commit()
        return first.id, second.id


def take_admin_away(factory, barrier, actor_id: int, target_id: int, move: str, results: list) -> None:
    """One admin's request, as the UI and API views run it: service call, guard, commit."""
    session = factory()
    try:
        actor, target = session.get(User, actor_id), session.get(User, target_id)
        barrier.wait()
        if move == "demote":
            set_role(session, target, "responder")
            ensure_login_admin(session)
        elif move == "deactivate":
            deactivate_user(session, target, actor=actor)
            ensure_login_admin(session)
        else:
            update_user(session, target, password=None)
        session.commit()
        results.append("done")
    except Conflict:
        session.rollback()
        results.append("refused")
    except Exception as exc:  # anything else is a bug (a deadlock would land here)
        session.rollback()
        results.append(repr(exc))
    finally:
        session.close()


@pytest.mark.postgres_only
@pytest.mark.backends("postgresql")
def test_mutual_removal_through_core_services_always_leaves_an_admin(session_factory):
    for round_no in range(ROUNDS):
        first, second = fresh_admin_pair(session_factory, f"core{round_no}")
        move_a, move_b = MOVES[round_no % len(MOVES)]
        barrier, results = threading.Barrier(2), []
        threads = [threading.Thread(target=take_admin_away, args=(session_factory, barrier, first, second,
                                                                   move_a, results)),
                   threading.Thread(target=take_admin_away, args=(session_factory, barrier, second, first,
                                                                   move_b, results))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with session_factory() as check:
            remaining = login_admins(check)
        assert remaining >= 1, f"round {round_no} ({move_a}/{move_b}) left no admin: {results}"
        assert sorted(results) == ["done", "refused"], f"round {round_no}: {results}"


def api_call(url: str, email: str, target: int, move: str, barrier, statuses: list) -> None:
    """One admin's API request against the other, sent when both are ready."""
    with requests.Session() as http:
        http.headers.update(basic(email))
        barrier.wait()
        if move == "demote":
            response = http.patch(f"{url}/{target}", json={"role": "responder"}, timeout=60)
        else:
            response = http.post(f"{url}/{target}/deactivate", timeout=60)
        statuses.append(response.status_code)


@pytest.mark.postgres_only
@pytest.mark.backends("postgresql")
def test_mutual_removal_through_the_http_api_always_leaves_an_admin(app, live_server, session_factory):
    rounds = 5
    for round_no in range(rounds):
        first, second = fresh_admin_pair(session_factory, f"http{round_no}")
        with session_factory() as session:
            emails = {user.id: user.email for user in session.scalars(select(User).where(
                User.id.in_([first, second])))}
        barrier, statuses = threading.Barrier(2), []
        url = live_server.url + "/api/v1/users"
        moves = ("demote", "deactivate") if round_no % 2 else ("deactivate", "deactivate")
        threads = [threading.Thread(target=api_call, args=(url, emails[first], second, moves[0], barrier, statuses)),
                   threading.Thread(target=api_call, args=(url, emails[second], first, moves[1], barrier, statuses))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(status < 500 for status in statuses), statuses
        assert statuses.count(200) == 1, statuses  # the other is 409 (or 401/403 once it lost its role)
        with session_factory() as check:
            assert login_admins(check) >= 1, f"HTTP round {round_no} left no admin: {statuses}"
        page = requests.get(live_server.url + "/login", timeout=60).text
        assert FIRST_RUN not in page


def test_login_offers_no_first_run_form_once_an_admin_existed(app, client, make_account):
    admin = make_account(role="admin")
    with app.app_context():
        # However it happened (a race, a direct database edit), nobody can sign in as admin now.
        db.session.execute(update(User).where(User.id == admin.id).values(role="responder"))
        db.session.commit()
    page = client.get("/login").get_data(as_text=True)
    assert FIRST_RUN not in page
    assert "flask pagerpal create-admin" in page
    # Posting the first-run form anyway is only a failed sign-in: no account appears.
    token = csrf_token_from(page)
    response = client.post("/login", data={"name": "Mallory", "email": "mallory@example.test",
                                           "password": "mallory-password", "confirm": "mallory-password",
                                           "csrf_token": token})
    assert response.status_code in (400, 401)
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "mallory@example.test")) is None
        assert db.session.scalar(select(func.count(User.id)).where(User.role == "admin")) == 0


def test_a_deactivated_admin_from_before_the_marker_still_counts(app, client, make_account):
    """Databases older than the app_state marker: any admin row, even inactive, means "existed"."""
    make_account(role="admin", active=False)
    with app.app_context():
        db.session.execute(delete(AppState))
        db.session.commit()
    page = client.get("/login").get_data(as_text=True)
    assert FIRST_RUN not in page and "create-admin" in page


def _forget_user(app, email: str) -> None:
    """Remove an account outright (in SQL) so that only the app_state marker remembers it."""
    with app.app_context():
        assert db.session.get(AppState, ADMIN_EXISTED_KEY) is not None, "no admin_existed marker recorded"
        db.session.execute(delete(User).where(User.email == email))
        db.session.commit()


def test_marker_recorded_by_the_cli_create_admin(app, client, runner):
    result = runner.invoke(args=["pagerpal", "create-admin", "--email", "root@example.test",
                                 "--password-stdin"], input="a-long-password\n")
    assert result.exit_code == 0, result.output
    _forget_user(app, "root@example.test")
    assert FIRST_RUN not in client.get("/login").get_data(as_text=True)


def test_marker_recorded_by_an_api_role_change(app, client, make_account):
    admin = make_account(role="admin")
    created = client.post("/api/v1/users", headers=basic(admin.email),
                          json={"email": "later@example.test", "password": PASSWORD, "role": "viewer"})
    assert created.status_code == 201
    with app.app_context():
        db.session.execute(delete(AppState))  # only the promotion below may record it
        db.session.commit()
    promoted = client.patch(f"/api/v1/users/{created.json['id']}", headers=basic(admin.email),
                            json={"role": "admin"})
    assert promoted.status_code == 200, promoted.json
    _forget_user(app, admin.email)
    _forget_user(app, "later@example.test")
    assert FIRST_RUN not in client.get("/login").get_data(as_text=True)


def test_marker_recorded_by_first_run_setup(app, client):
    page = client.get("/login").get_data(as_text=True)
    assert FIRST_RUN in page
    response = client.post("/login", data={"name": "Ada", "email": "ada@example.test",
                                           "password": "a-long-password", "confirm": "a-long-password",
                                           "csrf_token": csrf_token_from(page)})
    assert response.status_code == 302
    _forget_user(app, "ada@example.test")
    with app.app_context():
        db.session.execute(delete(AppState).where(AppState.key != ADMIN_EXISTED_KEY))
        db.session.commit()
    assert FIRST_RUN not in app.test_client().get("/login").get_data(as_text=True)


def test_removing_the_last_admins_password_is_refused(app, client, make_account):
    admin = make_account(role="admin")
    response = client.patch(f"/api/v1/users/{admin.id}", headers=basic(admin.email), json={"password": None})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"
