"""Sign-in throttling (review findings 4 and 5): one counter per (address, account) and per account,
shared by the /login form and the API's Basic auth, checked before the password."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests

from pagerpal_core.errors import RateLimited
from pagerpal_core.services import signin
from pagerpal_web.auth import credential_cache
from tests.conftest import csrf_token_from
from tests.factories import PASSWORD, make_user
from tests.web.conftest import basic, login

WRONG = "not-the-password"
OUTCOME = {"ui": {302: "ok", 401: "wrong", 429: "wait"}, "api": {200: "ok", 401: "wrong", 429: "wait"}}


@pytest.fixture(autouse=True)
def _no_cached_credentials():
    # A verified password is cached per process; every try here must reach the throttle.
    credential_cache.clear()
    yield
    credential_cache.clear()


def attempt(app, surface: str, email: str, password: str, address: str = "198.51.100.7") -> str:
    """One sign-in try from `address` through the UI form or Basic auth: "ok", "wrong" or "wait"."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if surface == "ui":
        status = login(client, email, password).status_code
    else:
        status = client.get("/api/v1/system/jobs", headers=basic(email, password)).status_code
    return OUTCOME[surface].get(status, str(status))


@pytest.mark.parametrize("surface", ["ui", "api"])
def test_signing_in_to_your_own_account_does_not_reset_guessing_at_another(app, make_account, surface):
    """Finding 4: a success with ANY account cleared the address's counter, so an attacker with an
    account of their own could guess someone else's password without limit."""
    mine, victim = make_account(role="viewer"), make_account(role="admin")
    outcomes = []
    for _ in range(3):
        outcomes += [attempt(app, surface, victim.email, WRONG) for _ in range(3)]
        assert attempt(app, surface, mine.email, PASSWORD) == "ok"
    assert outcomes[:5] == ["wrong"] * 5 and set(outcomes[5:]) == {"wait"}, outcomes
    # The attacked account waits at this address even with its right password; elsewhere it does not.
    assert attempt(app, surface, victim.email, PASSWORD) == "wait"
    assert attempt(app, surface, victim.email, PASSWORD, address="203.0.113.50") == "ok"


@pytest.mark.parametrize("surface", ["ui", "api"])
def test_wrong_passwords_for_one_account_do_not_lock_out_the_others_at_that_address(app, make_account, surface):
    """Finding 5: five bad passwords blocked every account at the address (behind a proxy: everyone)."""
    victim, colleague = make_account(role="responder"), make_account(role="admin")
    assert [attempt(app, surface, victim.email, WRONG) for _ in range(6)] == ["wrong"] * 5 + ["wait"]
    assert attempt(app, surface, colleague.email, PASSWORD) == "ok"
    assert attempt(app, surface, colleague.email, WRONG) == "wrong"
    # An email that is no account is throttled like one, and locks nobody else out either.
    assert [attempt(app, surface, "nobody@example.test", WRONG) for _ in range(6)][-1] == "wait"
    assert attempt(app, surface, colleague.email, PASSWORD) == "ok"


def test_ui_and_api_count_on_one_counter(app, make_account):
    """The form and Basic auth used separate counters: each surface gave its own five tries."""
    victim = make_account(role="admin")
    tries = [attempt(app, "ui", victim.email, WRONG) for _ in range(3)]
    tries += [attempt(app, "api", victim.email, WRONG) for _ in range(2)]
    assert tries == ["wrong"] * 5
    assert attempt(app, "api", victim.email, WRONG) == "wait"
    assert attempt(app, "ui", victim.email, WRONG) == "wait"


def test_an_api_success_clears_its_own_counter(app, make_account):
    """Basic auth never cleared failures: a client that mistyped four times was blocked for good later."""
    user = make_account(role="responder")
    assert [attempt(app, "api", user.email, WRONG) for _ in range(4)] == ["wrong"] * 4
    assert attempt(app, "api", user.email, PASSWORD) == "ok"
    assert [attempt(app, "api", user.email, WRONG) for _ in range(4)] == ["wrong"] * 4


def test_an_attack_spread_over_addresses_makes_new_addresses_wait_but_not_the_owner(make_app, make_account):
    """Per account: guesses from many addresses add up; an address the owner signed in from stays open."""
    app = make_app(LOGIN_MAX_FAILURES="3", LOGIN_ACCOUNT_MAX_FAILURES="4")
    owner = make_account(role="admin")
    assert attempt(app, "ui", owner.email, PASSWORD, address="192.0.2.10") == "ok"   # the owner's usual address
    assert [attempt(app, "api", owner.email, WRONG, address=f"10.0.0.{i}") for i in range(1, 5)] == ["wrong"] * 4
    assert attempt(app, "api", owner.email, PASSWORD, address="10.0.0.99") == "wait"
    assert attempt(app, "ui", owner.email, PASSWORD, address="10.0.0.99") == "wait"
    assert attempt(app, "ui", owner.email, PASSWORD, address="192.0.2.10") == "ok"
    # Other accounts are untouched by the attack on this one.
    other = make_account(role="viewer")
    assert attempt(app, "api", other.email, PASSWORD, address="10.0.0.99") == "ok"


def test_the_ui_says_how_long_to_wait(make_app, make_account):
    app = make_app(LOGIN_MAX_FAILURES="2", LOGIN_BLOCK_SECONDS="90")
    victim = make_account(role="admin")
    client = app.test_client()
    for _ in range(2):
        login(client, victim.email, WRONG)
    page = login(client, victim.email, WRONG)
    assert page.status_code == 429
    seconds = re.search(r"Try again in (\d+) seconds", page.get_data(as_text=True))
    assert seconds and 1 <= int(seconds.group(1)) <= 90
    api = client.get("/api/v1/system/jobs", headers=basic(victim.email, WRONG))
    assert api.status_code == 429 and 1 <= int(api.headers["Retry-After"]) <= 90
    assert api.json["error"]["code"] == "too_many_failures"


# --- the rule itself, with explicit times ------------------------------------------------------

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = signin.SigninPolicy(max_failures=2, block_seconds=10, account_max_failures=100)


def reserve(session, now, address="192.0.2.1", email="ada@example.test"):
    attempt_ = signin.reserve_attempt(session, address, email, now=now, policy=POLICY)
    session.commit()
    return attempt_


def wait_of(session, now, **kwargs) -> int:
    with pytest.raises(RateLimited) as refused:
        reserve(session, now, **kwargs)
    session.rollback()
    return refused.value.retry_after


def test_each_further_failure_doubles_the_wait_and_a_quiet_day_forgets(session):
    reserve(session, T0)
    reserve(session, T0)
    assert wait_of(session, T0 + timedelta(seconds=1)) == 9
    now = T0 + timedelta(seconds=10)
    waits = []
    for _ in range(4):
        reserve(session, now)
        waits.append(wait_of(session, now))
        now += timedelta(seconds=waits[-1])
    assert waits == [20, 40, 80, 160]
    # Another account, or this one from another address, is not affected.
    reserve(session, now - timedelta(seconds=1), email="bob@example.test")
    reserve(session, now - timedelta(seconds=1), address="192.0.2.2")
    # A day without failures (after the last wait ran out) starts afresh.
    later = now + signin.FORGET_AFTER
    reserve(session, later)
    reserve(session, later)
    assert wait_of(session, later) == 10


def test_a_success_clears_only_its_own_pair_and_takes_its_try_back(session):
    user = make_user(session, email="ada@example.test")
    session.commit()
    policy = signin.SigninPolicy(max_failures=3, block_seconds=10, account_max_failures=3)
    for address in ("192.0.2.1", "192.0.2.2"):
        signin.reserve_attempt(session, address, user.email, now=T0, policy=policy)
    session.commit()
    assert signin.sign_in(session, "192.0.2.1", user.email, PASSWORD, policy=policy, now=T0).id == user.id
    # Two failures remain on the account (the success took its own try back): one more may come
    # from a third address before the account waits; the other pair keeps its failure.
    signin.reserve_attempt(session, "192.0.2.3", user.email, now=T0, policy=policy)
    session.commit()
    with pytest.raises(RateLimited):
        signin.reserve_attempt(session, "192.0.2.4", user.email, now=T0, policy=policy)
    session.rollback()
    # The address that just signed in is known: the account's wait does not apply to it.
    assert signin.sign_in(session, "192.0.2.1", user.email, PASSWORD, policy=policy, now=T0).id == user.id


# --- concurrency: N parallel guesses over real sockets -------------------------------------------

@pytest.mark.backends("postgresql")
@pytest.mark.parametrize("surface", ["api", "ui"])
def test_parallel_guesses_reach_the_password_check_at_most_the_allowed_times(app, live_server, make_account,
                                                                             surface):
    """40 wrong passwords at once used to get 11 password checks instead of 5: the counter was read,
    then the password checked, then the counter written. Now each try is counted before its check."""
    victim = make_account(role="admin")
    sessions, tokens = [requests.Session() for _ in range(40)], []
    if surface == "ui":
        tokens = [csrf_token_from(s.get(f"{live_server.url}/login").text) for s in sessions]
    barrier, codes, lock = threading.Barrier(40), [], threading.Lock()

    def guess(i):
        barrier.wait()
        if surface == "ui":
            response = sessions[i].post(f"{live_server.url}/login", allow_redirects=False, data={
                "email": victim.email, "password": f"guess-{i}-wrong", "csrf_token": tokens[i]})
        else:
            response = sessions[i].get(f"{live_server.url}/api/v1/system/jobs",
                                       auth=(victim.email, f"guess-{i}-wrong"))
        with lock:
            codes.append(response.status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(codes) == 40 and set(codes) <= {401, 429}, codes
    # A 401 is a password that was checked; LOGIN_MAX_FAILURES is 5.
    assert 1 <= codes.count(401) <= 5, sorted(codes)
    # And the owner, from another address, is not locked out by it (5 < LOGIN_ACCOUNT_MAX_FAILURES).
    owner = app.test_client()
    owner.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert owner.get("/api/v1/system/jobs", headers=basic(victim.email)).status_code == 200
