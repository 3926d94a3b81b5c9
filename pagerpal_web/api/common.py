"""Request parsing and response helpers shared by the API modules."""

from __future__ import annotations

from flask import g, request, url_for

from pagerpal_core.errors import DomainError, Invalid
from pagerpal_core.timeutil import isoformat

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class BadRequest(DomainError):
    code, status = "bad_request", 400


def json_body(required: bool = True) -> dict:
    """The request's JSON object, or a 400 naming what is wrong with it."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise BadRequest("a JSON object body is required")
        return {}
    data = request.get_json(force=True, silent=True)
    if data is None:
        raise BadRequest("the body is not valid JSON")
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def current_api_user():
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
        if not raw_after.isdigit():
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


def ts(value):
    return isoformat(value)
