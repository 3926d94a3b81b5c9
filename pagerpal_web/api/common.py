"""Request parsing and response helpers shared by the API modules."""

from __future__ import annotations

from flask import g, has_request_context, jsonify, request, url_for
from sqlalchemy import event

from pagerpal_core.db import Keyset
from pagerpal_core.errors import Invalid, NotFound
from pagerpal_core.services.validation import text_problem  # noqa: F401 - API modules import it from here
from pagerpal_core.timeutil import isoformat, parse_iso
from pagerpal_web.api import bp
from pagerpal_web.bodies import request_json
from pagerpal_web.config import settings  # noqa: F401 - API modules import it from here
from pagerpal_web.errors import PENDING_BODY_ERRORS, error_response
from pagerpal_web.extensions import db

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
# Ids are 32-bit columns; a larger number cannot name a row (and SQLite cannot even bind
# one past 64 bits), so it is answered as "not found" / "invalid" before any query runs.
MAX_ID = 2**31 - 1


def json_body(required: bool = True) -> dict:
    """The request's JSON object, or a 400 naming what is wrong with it (NaN and Infinity included)."""
    return request_json(finite_only=True, required=required, object_only=True)


@bp.before_request
def reject_impossible_ids():
    """404 for a path id no row can have (runs after the auth guard)."""
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and not 0 <= value <= MAX_ID:
            raise NotFound(f"{name.replace('_id', '')} {value} not found")


def _unstorable_values(value, path: str, errors: dict) -> None:
    """Record values no column can hold: ids past 32 bits and text PostgreSQL would refuse.

    Checked once here, for every body, so a bad value is a 422 naming its field instead
    of a database error deep inside a service.
    """
    if isinstance(value, bool):
        return
    if isinstance(value, int) and not -MAX_ID <= value <= MAX_ID:
        errors[path] = f"must be between {-MAX_ID} and {MAX_ID}"
    elif isinstance(value, str):
        problem = text_problem(value)
        if problem:
            errors[path] = problem
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            problem = text_problem(key)
            if problem:
                errors[path or "body"] = f"keys {problem}"
                continue
            _unstorable_values(item, where, errors)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _unstorable_values(item, f"{path}[{i}]", errors)


def hold_field_errors(data: dict, errors: dict) -> None:
    """Hold `errors` back until the service has checked the body's other values: one 422 names all.

    The offending keys leave `data`, so the service sees only values of the right shape and
    reports its own problems (a role that does not exist, a bad time zone) for the rest.
    Whatever happens next answers with every held error: the service's refusal is merged
    into them (pagerpal_web.errors.pending_body_refusal), and a service that accepts what
    is left is stopped at the commit (`refuse_commit_with_held_errors`), so nothing is written.
    """
    if not errors:
        return
    held = g.setdefault(PENDING_BODY_ERRORS, {})
    for name, problem in errors.items():
        held.setdefault(name, problem)
        data.pop(name.split(".", 1)[0].split("[", 1)[0], None)


@event.listens_for(db.session, "before_commit")
def refuse_commit_with_held_errors(session) -> None:
    """A request whose body had field errors never commits, even when the service accepted the rest."""
    if has_request_context() and g.get(PENDING_BODY_ERRORS):
        raise Invalid("invalid request body", fields=dict(g.get(PENDING_BODY_ERRORS)))


@bp.after_request
def refuse_success_with_held_errors(response):
    """A view that neither failed nor committed (a read with a body) still answers the held errors."""
    if response.status_code < 400 and g.get(PENDING_BODY_ERRORS):
        return error_response(422, Invalid.code, "invalid request body", fields=dict(g.get(PENDING_BODY_ERRORS)))
    return response


def body_fields(allowed, *, required: bool = True, needed=()) -> dict:
    """The JSON body restricted to `allowed` keys; unknown keys and missing `needed` ones are field errors.

    Only keys the client sent are returned, so update views can pass them on as "change
    exactly these" (absent keys stay as they are). Field errors are held, not raised at
    once (see hold_field_errors), so the answer names every bad field in one 422.
    """
    data = json_body(required=required)
    errors = {name: "unknown field" for name in sorted(set(data) - set(allowed))}
    errors.update({name: "is required" for name in needed if name not in data})
    _unstorable_values(data, "", errors)
    hold_field_errors(data, errors)
    return data


def check_types(data: dict, **types) -> None:
    """A field error for any present key whose value is not of the given JSON type ("string", "integer", ...).

    A type may end in "?" to allow null. Services validate meaning; this only keeps
    values of the wrong JSON type from reaching them. Errors are held (hold_field_errors)
    so the 422 also names what the service finds wrong with the other fields.
    """
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    errors = {}
    for key, kind in types.items():
        if key not in data:
            continue
        nullable = kind.endswith("?")
        kind = kind.rstrip("?")
        value = data[key]
        if value is None and nullable:
            continue
        if not checks[kind](value):
            article = "an" if kind[0] in "aeiou" else "a"
            errors[key] = f"must be {article} {kind}" + (" or null" if nullable else "")
    hold_field_errors(data, errors)


def current_api_user():
    """The account that authenticated this API request."""
    return g.api_user


def page_args() -> tuple[int, int | None]:
    """(limit, after_id) from `?limit=&after=`; keyset pagination stays stable under inserts."""
    errors = {}
    limit, after = DEFAULT_LIMIT, None
    raw_limit = request.args.get("limit")
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            errors["limit"] = f"must be an integer from 1 to {MAX_LIMIT}"
        else:
            limit = int(raw_limit)
    raw_after = request.args.get("after")
    if raw_after is not None:
        if not raw_after.isdigit() or len(raw_after) > 18:
            errors["after"] = "must be an id (integer)"
        else:
            after = int(raw_after)
    if errors:
        raise Invalid("invalid pagination", fields=errors)
    return limit, after


def page_response(items: list, limit: int, endpoint: str, serialize, **url_args) -> dict:
    """A page of `items` (fetched with limit + 1) with a `next` link when more exist."""
    has_more = len(items) > limit
    items = items[:limit]
    next_url = None
    if has_more:
        args = {k: v for k, v in request.args.items() if k not in ("after", "limit")}
        next_url = url_for(endpoint, **{**args, **url_args}, after=items[-1].id, limit=limit)
    return {"items": [serialize(item) for item in items], "next": next_url}


def paginate(fetch, endpoint: str, serialize, **url_args) -> dict:
    """One keyset page (`?after=<id>&limit=`) of what the core list function `fetch(page=Keyset)` returns.

    One row more than the limit is asked for, so `next` appears only when more exist.
    """
    limit, after = page_args()
    rows = fetch(page=Keyset(limit=limit + 1, after=after))
    return page_response(rows, limit, endpoint, serialize, **url_args)


def query_instant(name: str, errors: dict, *, required: bool = False):
    """An ISO-8601 query argument as an aware UTC datetime (None when absent)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        if required:
            errors[name] = "is required (an ISO-8601 timestamp)"
        return None
    try:
        return parse_iso(raw)
    except (ValueError, TypeError, OverflowError):
        errors[name] = "must be an ISO-8601 timestamp such as 2025-03-09T09:00:00Z"
        return None


def query_window(*, required: bool = False) -> tuple:
    """`?from=&to=` as aware UTC datetimes (None when absent); Invalid names each bad or missing one."""
    errors: dict = {}
    start = query_instant("from", errors, required=required)
    end = query_instant("to", errors, required=required)
    if errors:
        raise Invalid("invalid window", fields=errors)
    return start, end


def created(body: dict, endpoint: str, **url_args):
    """201 with `body` and a Location header pointing at the new resource."""
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = url_for(endpoint, **url_args)
    return response


def no_content():
    """204 No Content."""
    return "", 204


def ts(value):
    """ISO-8601 UTC (Z) for a datetime, None for None."""
    return isoformat(value)
