"""GET /api/v1/oncall: who is on call in every schedule at one instant (now by default)."""

from flask import jsonify

from pagerpal_core.services.oncall import Shift, who_is_on_call
from pagerpal_core.services.schedules import list_schedules
from pagerpal_core.services.validation import raise_if
from pagerpal_core.timeutil import utcnow
from pagerpal_web.api import bp
from pagerpal_web.api.common import query_instant, ts
from pagerpal_web.extensions import db


def serialize_shift(shift: Shift) -> dict:
    """A resolved shift as JSON: who, when, and the layer that decided it."""
    return {
        "schedule_id": shift.schedule_id,
        "user": {"id": shift.user.id, "name": shift.user.name, "email": shift.user.email,
                 "active": shift.user.active},
        "start": ts(shift.start), "end": ts(shift.end), "layer": shift.layer, "source_id": shift.source_id,
    }


def at_argument():
    """`?at=` as an instant, now when absent."""
    errors: dict = {}
    at = query_instant("at", errors)
    raise_if(errors, "invalid instant")
    return at or utcnow()


@bp.get("/oncall")
def oncall_everywhere():
    """For every schedule: who is on call at `at` (now by default), or null for a gap."""
    at = at_argument()
    items = []
    for schedule in list_schedules(db.session):
        shift = who_is_on_call(db.session, schedule, at)
        items.append({
            "schedule": {"id": schedule.id, "name": schedule.name, "team_id": schedule.team_id,
                         "timezone": schedule.timezone},
            "on_call": serialize_shift(shift) if shift else None,
        })
    return jsonify(at=ts(at), items=items)
