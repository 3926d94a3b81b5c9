"""/api/v1/schedules with entries, overrides, rotations, on-call lookups and resolved shifts."""

from functools import partial

from flask import jsonify

from pagerpal_core.models import Rotation, Schedule, ScheduleEntry, ScheduleOverride
from pagerpal_core.services import schedules as svc
from pagerpal_core.services.oncall import shifts_between, who_is_on_call
from pagerpal_core.services.validation import raise_if
from pagerpal_core.timeutil import utcnow
from pagerpal_web.api import bp
from pagerpal_web.api.common import body_fields, created, no_content, paginate, query_window, ts
from pagerpal_web.api.oncall import at_argument, serialize_shift
from pagerpal_web.extensions import db

SCHEDULE_FIELDS = {"name", "timezone", "description", "team_id"}
ENTRY_FIELDS = {"user_id", "starts_at", "ends_at"}
OVERRIDE_FIELDS = {"user_id", "starts_at", "ends_at", "reason"}
ROTATION_FIELDS = {"name", "shift_length", "shift_unit", "handoff_time", "start_date", "participants"}


def serialize_schedule(schedule: Schedule) -> dict:
    """A schedule as JSON with its rotations."""
    return {"id": schedule.id, "name": schedule.name, "description": schedule.description,
            "timezone": schedule.timezone, "team_id": schedule.team_id,
            "rotations": [serialize_rotation(r) for r in schedule.rotations],
            "created_at": ts(schedule.created_at)}


def serialize_entry(entry: ScheduleEntry) -> dict:
    """A schedule entry (an explicit shift) as JSON."""
    return {"id": entry.id, "schedule_id": entry.schedule_id, "user_id": entry.user_id,
            "starts_at": ts(entry.starts_at), "ends_at": ts(entry.ends_at),
            "created_at": ts(entry.created_at)}


def serialize_override(override: ScheduleOverride) -> dict:
    """A schedule override (temporary cover) as JSON."""
    return {"id": override.id, "schedule_id": override.schedule_id, "user_id": override.user_id,
            "starts_at": ts(override.starts_at), "ends_at": ts(override.ends_at), "reason": override.reason,
            "created_at": ts(override.created_at)}


def serialize_rotation(rotation: Rotation) -> dict:
    """A rotation as JSON with its participants in turn order."""
    return {"id": rotation.id, "schedule_id": rotation.schedule_id, "name": rotation.name,
            "shift_length": rotation.shift_length, "shift_unit": rotation.shift_unit,
            "handoff_time": rotation.handoff_time, "start_date": rotation.start_date.isoformat(),
            "participants": [{"id": p.id, "user_id": p.user_id, "position": p.position}
                             for p in rotation.participants],
            "created_at": ts(rotation.created_at)}


def _schedule_args(data: dict) -> dict:
    args = {k: v for k, v in data.items() if k != "team_id"}
    if "team_id" in data:
        args["team"] = data["team_id"]
    return args


def _layer_item(get, schedule_id: int, item_id: int):
    """The entry or override `item_id` of schedule `schedule_id` (core's `get` says NotFound for either)."""
    return get(db.session, svc.get_schedule(db.session, schedule_id), item_id)


# --- schedules -----------------------------------------------------------------------

@bp.get("/schedules")
def list_schedules():
    """Schedules by id, paginated."""
    return jsonify(paginate(partial(svc.list_schedules, db.session), "api.list_schedules", serialize_schedule))


@bp.post("/schedules")
def create_schedule_view():
    """Create a schedule in an IANA time zone."""
    data = body_fields(SCHEDULE_FIELDS, needed=("name",))
    schedule = svc.create_schedule(db.session, **_schedule_args(data), now=utcnow())
    db.session.commit()
    return created(serialize_schedule(schedule), "api.read_schedule", schedule_id=schedule.id)


@bp.get("/schedules/<int:schedule_id>")
def read_schedule(schedule_id: int):
    """One schedule with its rotations."""
    return jsonify(serialize_schedule(svc.get_schedule(db.session, schedule_id)))


@bp.patch("/schedules/<int:schedule_id>")
def update_schedule_view(schedule_id: int):
    """Change name, zone, description or team (null detaches it)."""
    data = body_fields(SCHEDULE_FIELDS)
    schedule = svc.get_schedule(db.session, schedule_id)
    schedule = svc.update_schedule(db.session, schedule, **_schedule_args(data))
    db.session.commit()
    return jsonify(serialize_schedule(schedule))


@bp.delete("/schedules/<int:schedule_id>")
def delete_schedule_view(schedule_id: int):
    """Delete a schedule no escalation level targets (409 otherwise)."""
    svc.delete_schedule(db.session, svc.get_schedule(db.session, schedule_id))
    db.session.commit()
    return no_content()


@bp.get("/schedules/<int:schedule_id>/oncall")
def schedule_oncall(schedule_id: int):
    """Who is on call at `?at=` (now by default): the shift and the layer that decided it, or null."""
    schedule = svc.get_schedule(db.session, schedule_id)
    at = at_argument()
    shift = who_is_on_call(db.session, schedule, at)
    return jsonify(at=ts(at), schedule_id=schedule.id, on_call=serialize_shift(shift) if shift else None)


@bp.get("/schedules/<int:schedule_id>/shifts")
def schedule_shifts(schedule_id: int):
    """The resolved shifts in [from, to), overrides over entries over rotations."""
    schedule = svc.get_schedule(db.session, schedule_id)
    start, end = query_window(required=True)
    return jsonify(items=[serialize_shift(s) for s in shifts_between(db.session, schedule, start, end)])


# --- entries -------------------------------------------------------------------------

@bp.get("/schedules/<int:schedule_id>/entries")
def list_entries(schedule_id: int):
    """Entries by id, optionally only those overlapping `?from=&to=`; paginated."""
    schedule = svc.get_schedule(db.session, schedule_id)
    start, end = query_window()
    fetch = partial(svc.list_entries, db.session, schedule, start=start, end=end)
    return jsonify(paginate(fetch, "api.list_entries", serialize_entry, schedule_id=schedule.id))


@bp.post("/schedules/<int:schedule_id>/entries")
def create_entry_view(schedule_id: int):
    """Add an explicit shift; one overlapping another entry is a 409 naming it."""
    schedule = svc.get_schedule(db.session, schedule_id)
    data = body_fields(ENTRY_FIELDS, needed=tuple(ENTRY_FIELDS))
    entry = svc.create_entry(db.session, schedule, user=data["user_id"], starts_at=data["starts_at"],
                             ends_at=data["ends_at"], now=utcnow())
    db.session.commit()
    return created(serialize_entry(entry), "api.read_entry", schedule_id=schedule.id, entry_id=entry.id)


@bp.get("/schedules/<int:schedule_id>/entries/<int:entry_id>")
def read_entry(schedule_id: int, entry_id: int):
    """One entry."""
    return jsonify(serialize_entry(_layer_item(svc.get_entry, schedule_id, entry_id)))


@bp.patch("/schedules/<int:schedule_id>/entries/<int:entry_id>")
def update_entry_view(schedule_id: int, entry_id: int):
    """Change an entry's user or times (the overlap rule applies)."""
    entry = _layer_item(svc.get_entry, schedule_id, entry_id)
    data = body_fields(ENTRY_FIELDS)
    if "user_id" in data:
        data["user"] = data.pop("user_id")
    entry = svc.update_entry(db.session, entry, **data)
    db.session.commit()
    return jsonify(serialize_entry(entry))


@bp.delete("/schedules/<int:schedule_id>/entries/<int:entry_id>")
def delete_entry_view(schedule_id: int, entry_id: int):
    """Delete an entry."""
    svc.delete_entry(db.session, _layer_item(svc.get_entry, schedule_id, entry_id))
    db.session.commit()
    return no_content()


# --- overrides -----------------------------------------------------------------------

@bp.get("/schedules/<int:schedule_id>/overrides")
def list_overrides(schedule_id: int):
    """Overrides by id, optionally only those overlapping `?from=&to=`; paginated."""
    schedule = svc.get_schedule(db.session, schedule_id)
    start, end = query_window()
    fetch = partial(svc.list_overrides, db.session, schedule, start=start, end=end)
    return jsonify(paginate(fetch, "api.list_overrides", serialize_override, schedule_id=schedule.id))


@bp.post("/schedules/<int:schedule_id>/overrides")
def create_override_view(schedule_id: int):
    """Add temporary cover; overrides may overlap anything and the newest wins."""
    schedule = svc.get_schedule(db.session, schedule_id)
    data = body_fields(OVERRIDE_FIELDS, needed=("user_id", "starts_at", "ends_at"))
    override = svc.create_override(db.session, schedule, user=data["user_id"], starts_at=data["starts_at"],
                                   ends_at=data["ends_at"], reason=data.get("reason", ""), now=utcnow())
    db.session.commit()
    return created(serialize_override(override), "api.read_override", schedule_id=schedule.id,
                   override_id=override.id)


@bp.get("/schedules/<int:schedule_id>/overrides/<int:override_id>")
def read_override(schedule_id: int, override_id: int):
    """One override."""
    return jsonify(serialize_override(_layer_item(svc.get_override, schedule_id, override_id)))


@bp.delete("/schedules/<int:schedule_id>/overrides/<int:override_id>")
def delete_override_view(schedule_id: int, override_id: int):
    """Delete an override."""
    svc.delete_override(db.session, _layer_item(svc.get_override, schedule_id, override_id))
    db.session.commit()
    return no_content()


# --- rotations -----------------------------------------------------------------------

@bp.get("/schedules/<int:schedule_id>/rotations")
def list_rotations(schedule_id: int):
    """The schedule's rotations with their turn order."""
    schedule = svc.get_schedule(db.session, schedule_id)
    return jsonify(items=[serialize_rotation(r) for r in schedule.rotations])


@bp.post("/schedules/<int:schedule_id>/rotations")
def create_rotation_view(schedule_id: int):
    """Create a rotation; `participants` is the turn order as user ids."""
    schedule = svc.get_schedule(db.session, schedule_id)
    data = body_fields(ROTATION_FIELDS, needed=("start_date",))
    if "participants" in data and not isinstance(data["participants"], list):
        raise_if({"participants": "must be a list of user ids"}, "invalid rotation")
    rotation = svc.create_rotation(db.session, schedule, **data, now=utcnow())
    db.session.commit()
    return created(serialize_rotation(rotation), "api.read_rotation", schedule_id=schedule.id,
                   rotation_id=rotation.id)


def _rotation(schedule_id: int, rotation_id: int) -> Rotation:
    return svc.get_rotation(db.session, svc.get_schedule(db.session, schedule_id), rotation_id)


@bp.get("/schedules/<int:schedule_id>/rotations/<int:rotation_id>")
def read_rotation(schedule_id: int, rotation_id: int):
    """One rotation."""
    return jsonify(serialize_rotation(_rotation(schedule_id, rotation_id)))


@bp.patch("/schedules/<int:schedule_id>/rotations/<int:rotation_id>")
def update_rotation_view(schedule_id: int, rotation_id: int):
    """Change a rotation's settings; `participants` (user ids) replaces the turn order."""
    rotation = _rotation(schedule_id, rotation_id)
    data = body_fields(ROTATION_FIELDS)
    participants = data.pop("participants", None)
    if participants is not None and not isinstance(participants, list):
        raise_if({"participants": "must be a list of user ids"}, "invalid rotation")
    rotation = svc.update_rotation(db.session, rotation, **data)
    if participants is not None:
        svc.set_rotation_participants(db.session, rotation, participants)
    db.session.commit()
    return jsonify(serialize_rotation(rotation))


@bp.delete("/schedules/<int:schedule_id>/rotations/<int:rotation_id>")
def delete_rotation_view(schedule_id: int, rotation_id: int):
    """Delete a rotation."""
    svc.delete_rotation(db.session, _rotation(schedule_id, rotation_id))
    db.session.commit()
    return no_content()


@bp.post("/schedules/<int:schedule_id>/rotations/<int:rotation_id>/participants")
def add_participant(schedule_id: int, rotation_id: int):
    """Append an active user to the end of the turn order; returns the rotation."""
    rotation = _rotation(schedule_id, rotation_id)
    data = body_fields({"user_id"}, needed=("user_id",))
    svc.add_rotation_participant(db.session, rotation, data["user_id"])
    db.session.commit()
    return created(serialize_rotation(rotation), "api.read_rotation", schedule_id=schedule_id,
                   rotation_id=rotation.id)


@bp.delete("/schedules/<int:schedule_id>/rotations/<int:rotation_id>/participants/<int:participant_id>")
def remove_participant(schedule_id: int, rotation_id: int, participant_id: int):
    """Remove one participant; the turn order closes up."""
    svc.remove_rotation_participant(db.session, _rotation(schedule_id, rotation_id), participant_id)
    db.session.commit()
    return no_content()
