"""/audit: the audit log for admins — filter by actor, object and time; newest first, paged.

Read-only: no form here changes or deletes a row. Bad filters are shown on the page (422)
with nothing listed, never a 500.
"""

from __future__ import annotations

from flask import render_template, request

from pagerpal_core.errors import Invalid
from pagerpal_core.models.audit import ACTOR_KINDS
from pagerpal_core.services import audit as svc
from pagerpal_core.services.users import list_users
from pagerpal_web.api.audit import audit_filter_from_args
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp

PAGE_SIZE = 50


@bp.get("/audit")
@login_required_role("admin")
def audit_log():
    """One page of audit rows, newest first; `before` is the id of the last row of the previous page."""
    errors: dict = {}
    rows: list = []
    raw_before = request.args.get("before") or None
    if raw_before is not None and (not raw_before.isdigit() or len(raw_before) > 18):
        errors["before"] = "must be an id"
    try:
        filters = audit_filter_from_args(request.args)
    except Invalid as exc:
        errors.update(exc.fields or {"filter": exc.message})
    if not errors:
        rows = svc.list_audit_events(db.session, filters=filters, limit=PAGE_SIZE + 1,
                                     before=int(raw_before) if raw_before else None, newest_first=True)
    older = rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None
    args = {k: v for k, v in request.args.items() if k != "before" and v}
    return render_template("audit.html", rows=rows[:PAGE_SIZE], errors=errors, older=older, args=args,
                           users=list_users(db.session), actor_kinds=ACTOR_KINDS), (422 if errors else 200)
