"""Two reported 500s: control characters in /login?next= and NUL in the incident search
(issue 12, finding 12)."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_token_from
from tests.web.conftest import login


# Where signing in redirects to is decided from the query string alone: one backend is enough.
@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("target", ["/incidents\r\nSet-Cookie: stolen=1", "/incidents%0d%0aX-Injected:%201",
                                    "/\t/evil.example", "/\n/evil.example", "/incidents\x7f"])
def test_control_characters_in_next_fall_back_to_the_dashboard(client, make_account, target):
    user = make_account(role="admin")
    page = client.get("/login", query_string={"next": target})
    assert page.status_code == 200
    response = client.post("/login", query_string={"next": target}, data={
        "email": user.email, "password": "correct-horse-battery",
        "csrf_token": csrf_token_from(page.get_data(as_text=True))})
    assert response.status_code == 302
    assert "\r" not in response.headers["Location"] and "\n" not in response.headers["Location"]
    if any(ord(c) < 32 or ord(c) == 127 for c in target):
        assert response.headers["Location"] == "/dashboard"
    # Already signed in: the same redirect, no 500.
    again = client.get("/login", query_string={"next": target})
    assert again.status_code == 302 and "Set-Cookie" not in again.headers.get("Location", "")


@pytest.mark.backends("sqlite")
def test_a_plain_local_next_still_works(client, make_account):
    user = make_account(role="admin")
    login(client, user.email)
    response = client.get("/login", query_string={"next": "/incidents?status=open"})
    assert response.status_code == 302 and response.headers["Location"] == "/incidents?status=open"


@pytest.mark.parametrize("query", ["\x00", "disk\x00full", "%00"])
def test_nul_in_the_incident_search_is_not_a_server_error(client, make_account, query):
    user = make_account(role="viewer")
    login(client, user.email)
    response = client.get("/incidents", query_string={"q": query})
    assert response.status_code < 500
