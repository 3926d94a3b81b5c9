"""GET /api/v1/audit-events: the audit log, for admins only. There is no write route, on purpose.

Order of checks: credentials (401), the admin role (403), the filters (422 naming each bad
one), then one keyset page oldest-first — `after` is the id of the last row seen, so a
script can follow the log as it grows.
"""

from __future__ import annotations

from flask import jsonify, request

from pagerpal_core.errors import Invalid
from pagerpal_core.services import audit as svc
from pagerpal_web.api import bp
from pagerpal_web.api.common import page_args, page_response, query_instant
from pagerpal_web.auth import requires_role
from pagerpal_web.extensions import db

FILTER_NAMES = ("actor", "actor_kind", "action", "object_type", "object_id", "since", "until")


def audit_filter_from_args(args) -> svc.AuditFilter:
    """The filters of `?actor=&actor_kind=&action=&object_type=&object_id=&since=&until=` (Invalid names bad ones)."""
    errors: dict = {}
    actor = args.get("actor") or None
    if actor is not None and (not actor.isdigit() or len(actor) > 9):
        errors["actor"] = "must be a user id"
    filters = svc.AuditFilter(
        actor_user_id=int(actor) if actor is not None and "actor" not in errors else None,
        actor_kind=args.get("actor_kind") or None, action=args.get("action") or None,
        object_type=args.get("object_type") or None, object_id=args.get("object_id") or None,
        since=query_instant("since", errors), until=query_instant("until", errors))
    try:
        filters.check()
    except Invalid as exc:
        errors = {**exc.fields, **errors}
    if errors:  # every bad filter at once
        raise Invalid("invalid audit filter", fields=errors)
    return filters


@bp.get("/audit-events")
@requires_role("admin")
def list_audit_events():
    """Audit rows oldest first, filtered, keyset-paginated (`limit`, `after`, `next`)."""
    filters = audit_filter_from_args(request.args)
    limit, after = page_args()
    rows = svc.list_audit_events(db.session, filters=filters, limit=limit + 1, after=after)
    return jsonify(page_response(rows, limit, "api.list_audit_events", svc.audit_event_as_dict))
