"""/schedules: entries, overrides, rotations, who is on call, a 14-day timeline, .ics feeds."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Response, flash, redirect, render_template, request, url_for

from pagerpal_core.localtime import zone_or_utc
from pagerpal_core.services import ical, oncall
from pagerpal_core.services import schedules as schedule_service
from pagerpal_core.services.coverage import GAP_HORIZON, schedule_gaps
from pagerpal_core.services.rotation_order import move_rotation_participant
from pagerpal_core.services.teams import list_teams
from pagerpal_core.services.users import get_user, list_users
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import active_user_choices, form_action, form_status, reader_zone, team_choices
from pagerpal_web.ui.forms import OverrideForm, RotationEditForm, RotationForm, ScheduleForm, ShiftForm

TIMELINE_DAYS = 14
# SVG geometry of the timeline, in viewBox units (it scales with the page).
LABEL_WIDTH, BAR_AREA, ROW_HEIGHT, HEADER_HEIGHT = 150, 850, 30, 26


def user_colour(user_id: int) -> str:
    """A stable colour per person so their shifts are easy to follow across days.

    Lightness 30% keeps the white name on every hue at 4.5:1 or better (WCAG AA); 48% fell
    to 2:1 on yellows and greens.
    """
    return f"hsl({(user_id * 67) % 360}, 55%, 30%)"


def timeline(schedules: list, *, start: datetime, days: int = TIMELINE_DAYS, zone: str = "UTC") -> dict:
    """Geometry for the SVG timeline: one row per schedule, bars per resolved shift.

    `start` is a midnight in `zone`; day boundaries, labels and bar titles follow that zone.
    """
    tz = zone_or_utc(zone)
    end = start + timedelta(days=days)
    span = (end - start).total_seconds()

    def x(moment: datetime) -> float:
        return round(LABEL_WIDTH + BAR_AREA * (moment - start).total_seconds() / span, 2)

    rows = []
    for i, schedule in enumerate(schedules):
        y = HEADER_HEIGHT + i * ROW_HEIGHT
        bars = []
        for shift in oncall.shifts_between(db.session, schedule, start, end):
            left, right = x(shift.start), x(shift.end)
            width = max(right - left, 1.0)
            name = shift.user.name or shift.user.email
            fit = int(width // 7)
            bars.append({
                "x": left, "w": round(width, 2), "y": y + 4, "h": ROW_HEIGHT - 8, "layer": shift.layer,
                "colour": user_colour(shift.user_id), "name": name,
                "label": name if len(name) <= fit else (name[: fit - 1] + "…" if fit >= 4 else ""),
                "title": f"{name} ({shift.layer}) {shift.start.astimezone(tz):%a %d %b %H:%M} – "
                         f"{shift.end.astimezone(tz):%a %d %b %H:%M %Z}",
            })
        rows.append({"schedule": schedule, "y": y, "bars": bars})
    # Local midnights: a DST day is 23 or 25 hours wide, as it is on the wall clock.
    local_start = start.astimezone(tz)
    midnights = [datetime.combine(local_start.date() + timedelta(days=d), time(0), tzinfo=tz) for d in range(days)]
    day_marks = [{"x": x(m), "label": m.strftime("%a %d")} for m in midnights]
    now = utcnow()
    return {"rows": rows, "days": day_marks, "now_x": x(now) if start <= now < end else None,
            "width": LABEL_WIDTH + BAR_AREA, "height": HEADER_HEIGHT + max(1, len(rows)) * ROW_HEIGHT + 4,
            "label_width": LABEL_WIDTH, "day_width": BAR_AREA / days, "start": start, "end": end,
            "zone": tz.key}


def timeline_start(now: datetime, zone: str = "UTC") -> datetime:
    """Midnight today in `zone` (as UTC): the timeline's left edge."""
    tz = zone_or_utc(zone)
    return datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz).astimezone(UTC)


def _list_page(form: ScheduleForm):
    form.team_id.choices = team_choices()
    schedules = schedule_service.list_schedules(db.session)
    now = utcnow()
    on_call = {s.id: oncall.who_is_on_call(db.session, s, now) for s in schedules}
    teams = {t.id: t for t in list_teams(db.session)}
    return render_template("schedules.html", schedules=schedules, form=form, on_call=on_call, teams=teams,
                           timeline=timeline(schedules, start=timeline_start(now, reader_zone()),
                                             zone=reader_zone())), form_status(form)


@bp.get("/schedules")
@login_required_role("viewer")
def schedules():
    """Every schedule, who is on call in each now, and the next 14 days at a glance."""
    return _list_page(ScheduleForm())


@bp.post("/schedules")
@login_required_role("admin")
def create_schedule_view():
    """Create a schedule."""
    form = ScheduleForm()
    form.team_id.choices = team_choices()
    return form_action(
        lambda: schedule_service.create_schedule(
            db.session, name=form.name.data, timezone=(form.timezone.data or "").strip(),
            description=form.description.data or "", team=form.team_id.data, now=utcnow()),
        form=form, page=_list_page, aliases={"team": "team_id"},
        done=lambda schedule: f"Created schedule {schedule.name}. Add a rotation or entries next.",
        then=lambda schedule: url_for("ui.schedule_detail", schedule_id=schedule.id))


def _rotation_edit_forms(schedule, given: dict) -> dict:
    """One in-place edit form per rotation (the one just posted, with its errors, when given)."""
    posted = given.get("rotation_edit")
    return {r.id: (posted if posted is not None and posted._prefix == f"rotation-{r.id}-"
                   else RotationEditForm(prefix=f"rotation-{r.id}", obj=r, formdata=None))
            for r in schedule.rotations}


def _slot_choices():
    return active_user_choices(blank="choose…")


def _detail_page(schedule, **given):
    choices = active_user_choices(blank="choose…")
    forms = {
        "entry": given.get("entry") or ShiftForm(prefix="entry"),
        "override": given.get("override") or OverrideForm(prefix="override"),
        "rotation": given.get("rotation") or RotationForm(prefix="rotation"),
    }
    for form in forms.values():
        if "user_id" in form:
            form.user_id.choices = choices
            # Typed times are read in the schedule's zone; say which.
            form.starts_at.label.text = f"Starts ({schedule.timezone})"
            form.ends_at.label.text = f"Ends ({schedule.timezone})"
    for entry in forms["rotation"].participants.entries:
        entry.choices = choices
    edit_forms = _rotation_edit_forms(schedule, given)
    now = utcnow()
    status = max(form_status(f) for f in [*forms.values(), *edit_forms.values()])
    return render_template(
        "schedule_detail.html", schedule=schedule, forms=forms, now=now,
        on_call=oncall.who_is_on_call(db.session, schedule, now),
        entries=schedule_service.list_entries(db.session, schedule, start=now - timedelta(days=1)),
        overrides=schedule_service.list_overrides(db.session, schedule, start=now - timedelta(days=1)),
        users={u.id: u for u in list_users(db.session)}, user_choices=choices,
        timeline=timeline([schedule], start=timeline_start(now, schedule.timezone), zone=schedule.timezone),
        used_by_policy=schedule_service.is_schedule_targeted(db.session, schedule), edit_forms=edit_forms,
        gaps=schedule_gaps(db.session, schedule, now, now + GAP_HORIZON), gap_days=GAP_HORIZON.days), status


@bp.get("/schedules/<int:schedule_id>")
@login_required_role("viewer")
def schedule_detail(schedule_id: int):
    """One schedule's layers, who is on call, its timeline, and (for admins) the forms."""
    return _detail_page(schedule_service.get_schedule(db.session, schedule_id))


def _local(naive: datetime, zone: str) -> datetime:
    """A time typed in the schedule's zone as an aware datetime."""
    return naive.replace(tzinfo=ZoneInfo(zone))


def _schedule_write(schedule_id: int, name: str, form, action, done: str):
    schedule = schedule_service.get_schedule(db.session, schedule_id)
    if "user_id" in form:
        form.user_id.choices = _slot_choices()
    if "participants" in form:
        for entry in form.participants.entries:
            entry.choices = _slot_choices()
    return form_action(lambda: action(schedule, form), form=form, aliases={"user": "user_id"},
                       page=lambda form: _detail_page(schedule, **{name: form}), done=done,
                       then=url_for("ui.schedule_detail", schedule_id=schedule_id))


@bp.post("/schedules/<int:schedule_id>/entries")
@login_required_role("admin")
def add_entry_view(schedule_id: int):
    """Add a shift; an overlap with another entry is shown next to the start time."""
    return _schedule_write(schedule_id, "entry", ShiftForm(prefix="entry"), lambda schedule, form:
                           schedule_service.create_entry(
                               db.session, schedule, user=form.user_id.data,
                               starts_at=_local(form.starts_at.data, schedule.timezone),
                               ends_at=_local(form.ends_at.data, schedule.timezone), now=utcnow()),
                           "Entry added.")


@bp.post("/schedules/<int:schedule_id>/overrides")
@login_required_role("admin")
def add_override_view(schedule_id: int):
    """Add temporary cover (it wins over entries and rotations)."""
    return _schedule_write(schedule_id, "override", OverrideForm(prefix="override"), lambda schedule, form:
                           schedule_service.create_override(
                               db.session, schedule, user=form.user_id.data,
                               starts_at=_local(form.starts_at.data, schedule.timezone),
                               ends_at=_local(form.ends_at.data, schedule.timezone),
                               reason=form.reason.data or "", now=utcnow()),
                           "Override added.")


@bp.post("/schedules/<int:schedule_id>/rotations")
@login_required_role("admin")
def add_rotation_view(schedule_id: int):
    """Add a rotation; participants take turns in slot order (1st, 2nd, ...), exactly as chosen."""
    return _schedule_write(schedule_id, "rotation", RotationForm(prefix="rotation"), lambda schedule, form:
                           schedule_service.create_rotation(
                               db.session, schedule, start_date=form.start_date.data, name=form.name.data or "",
                               shift_length=form.shift_length.data, shift_unit=form.shift_unit.data,
                               handoff_time=form.handoff_time.data, participants=form.chosen(),
                               now=utcnow()),
                           "Rotation added.")


@bp.post("/schedules/<int:schedule_id>/rotations/<int:rotation_id>")
@login_required_role("admin")
def update_rotation_view(schedule_id: int, rotation_id: int):
    """Edit a rotation in place: name, shift length and unit, handoff time, first handoff."""
    schedule = schedule_service.get_schedule(db.session, schedule_id)
    rotation = schedule_service.get_rotation(db.session, schedule, rotation_id)
    form = RotationEditForm(prefix=f"rotation-{rotation.id}")
    return form_action(
        lambda: schedule_service.update_rotation(
            db.session, rotation, name=form.name.data or "", shift_length=form.shift_length.data,
            shift_unit=form.shift_unit.data, handoff_time=form.handoff_time.data, start_date=form.start_date.data),
        form=form, page=lambda form: _detail_page(schedule, rotation_edit=form), done="Rotation saved.",
        then=url_for("ui.schedule_detail", schedule_id=schedule_id))


@bp.post("/schedules/<int:schedule_id>/rotations/<int:rotation_id>/participants/<int:participant_id>/move")
@login_required_role("admin")
def move_participant_view(schedule_id: int, rotation_id: int, participant_id: int):
    """Move one participant up or down the turn order (plain POST buttons, no script)."""
    schedule = schedule_service.get_schedule(db.session, schedule_id)
    rotation = schedule_service.get_rotation(db.session, schedule, rotation_id)
    return form_action(
        lambda: move_rotation_participant(db.session, rotation, participant_id, request.form.get("direction", "")),
        done="Turn order changed.", then=url_for("ui.schedule_detail", schedule_id=schedule_id))


def _delete_part(schedule_id: int, get, delete, part_id: int, message: str):
    """Delete one entry, override or rotation of a schedule, then back to its page."""
    schedule = schedule_service.get_schedule(db.session, schedule_id)
    delete(db.session, get(db.session, schedule, part_id))
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("ui.schedule_detail", schedule_id=schedule_id), code=303)


@bp.post("/schedules/<int:schedule_id>/entries/<int:entry_id>/delete")
@login_required_role("admin")
def delete_entry_view(schedule_id: int, entry_id: int):
    """Delete an entry."""
    return _delete_part(schedule_id, schedule_service.get_entry, schedule_service.delete_entry, entry_id,
                        "Entry deleted.")


@bp.post("/schedules/<int:schedule_id>/overrides/<int:override_id>/delete")
@login_required_role("admin")
def delete_override_view(schedule_id: int, override_id: int):
    """Delete an override; the layers beneath show through again."""
    return _delete_part(schedule_id, schedule_service.get_override, schedule_service.delete_override,
                        override_id, "Override deleted.")


@bp.post("/schedules/<int:schedule_id>/rotations/<int:rotation_id>/delete")
@login_required_role("admin")
def delete_rotation_view(schedule_id: int, rotation_id: int):
    """Delete a rotation and its turn order."""
    return _delete_part(schedule_id, schedule_service.get_rotation, schedule_service.delete_rotation,
                        rotation_id, "Rotation deleted.")


@bp.post("/schedules/<int:schedule_id>/rotations/<int:rotation_id>/participants")
@login_required_role("admin")
def add_participant_view(schedule_id: int, rotation_id: int):
    """Append an active user to a rotation's turn order."""
    schedule = schedule_service.get_schedule(db.session, schedule_id)
    rotation = schedule_service.get_rotation(db.session, schedule, rotation_id)
    return form_action(
        lambda: schedule_service.add_rotation_participant(db.session, rotation, request.form.get("user_id", type=int)),
        done="Participant added at the end of the turn order.",
        then=url_for("ui.schedule_detail", schedule_id=schedule_id))


@bp.post("/schedules/<int:schedule_id>/rotations/<int:rotation_id>/participants/<int:participant_id>/remove")
@login_required_role("admin")
def remove_participant_view(schedule_id: int, rotation_id: int, participant_id: int):
    """Remove one participant; the turn order closes up."""
    schedule = schedule_service.get_schedule(db.session, schedule_id)
    rotation = schedule_service.get_rotation(db.session, schedule, rotation_id)
    schedule_service.remove_rotation_participant(db.session, rotation, participant_id)
    db.session.commit()
    flash("Participant removed.", "success")
    return redirect(url_for("ui.schedule_detail", schedule_id=schedule_id), code=303)


@bp.post("/schedules/<int:schedule_id>/delete")
@login_required_role("admin")
def delete_schedule_view(schedule_id: int):
    """Delete a schedule no escalation level targets."""
    schedule = schedule_service.get_schedule(db.session, schedule_id)
    return form_action(lambda: schedule_service.delete_schedule(db.session, schedule), done="Schedule deleted.",
                       then=url_for("ui.schedules"), failed=url_for("ui.schedule_detail", schedule_id=schedule_id))


def _ics(text: str, filename: str) -> Response:
    return Response(text, mimetype="text/calendar", headers={
        "Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "private, max-age=300"})


@bp.get("/schedules/<int:schedule_id>.ics")
@login_required_role("viewer")
def schedule_ical(schedule_id: int):
    """The schedule's shifts as an iCalendar feed (signed-in session required)."""
    schedule = schedule_service.get_schedule(db.session, schedule_id)
    return _ics(ical.schedule_ical(db.session, schedule, now=utcnow()), f"schedule-{schedule.id}.ics")


@bp.get("/users/<int:user_id>.ics")
@login_required_role("viewer")
def user_ical(user_id: int):
    """One person's shifts across all schedules as an iCalendar feed."""
    user = get_user(db.session, user_id)
    return _ics(ical.user_ical(db.session, user, now=utcnow()), f"user-{user.id}-on-call.ics")
