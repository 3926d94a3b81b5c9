"""The one JSON body decoder, for API requests and webhooks alike.

Python's `json` reads `NaN`, `Infinity` and numbers too large for a float (`1e400` becomes
infinity); JSON does not allow them and PostgreSQL's JSON columns refuse them. The two
surfaces answer them differently, on purpose:

- API bodies (`finite_only=True`) refuse them with a 400: the client sent a value no field
  can hold, and it can send a better one.
- Webhook payloads (`finite_only=False`) keep them: an alert is never lost over an odd
  number, and the payload cleaner stores non-finite numbers as text
  (`pagerpal_core.payloads.storable`).

Every failure is a 400 `bad_request` naming the problem, raised before anything is written.
"""

from __future__ import annotations

import json
import math

from flask import request

from pagerpal_core.errors import DomainError


class BadRequest(DomainError):
    """The request body cannot be read at all (empty, not JSON, not the right shape): 400."""

    code, status = "bad_request", 400


class NonFinite(ValueError):
    """NaN, Infinity or a number too large for a float in a body that must not carry them."""


def _refuse_constant(name: str):
    raise NonFinite(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NonFinite(f"{text} is out of range")
    return value


def decode_json(raw: bytes, *, finite_only: bool):
    """Decode `raw` as JSON; BadRequest naming the problem when it cannot be.

    With `finite_only`, NaN, Infinity and out-of-range numbers are refused (see the module
    docstring for why webhooks keep them).
    """
    if not raw.strip():
        raise BadRequest("a JSON body is required")
    options = {"parse_constant": _refuse_constant, "parse_float": _finite_float} if finite_only else {}
    try:
        return json.loads(raw, **options)
    except RecursionError:
        raise BadRequest("the body is nested too deeply") from None
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text") from None
    except NonFinite as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None


def request_json(*, finite_only: bool, required: bool = True, object_only: bool = False):
    """The current request's body decoded by `decode_json`.

    An empty body is `{}` unless `required`; `object_only` refuses anything but a JSON object.
    Over MAX_CONTENT_LENGTH, werkzeug answers 413 before this reads a byte.
    """
    raw = request.get_data(cache=True)
    if not raw.strip() and not required:
        return {}
    data = decode_json(raw, finite_only=finite_only)
    if object_only and not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data
