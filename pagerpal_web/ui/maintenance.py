"""/maintenance: maintenance windows — active and scheduled ones, and (for admins) create, end now, delete.

During a window the covered sources' and policies' alerts still open incidents, but nobody is
paged until it ends (pagerpal_core/services/maintenance.py).
"""

from __future__ import annotations

from datetime import timedelta

from flask import render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField
from wtforms.validators import InputRequired, Length

from pagerpal_core.services import maintenance as svc
from pagerpal_core.services.alert_sources import list_alert_sources
from pagerpal_core.services.escalation_policies import list_policies
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import form_action, form_status
from pagerpal_web.ui.forms import choice_list

TIME_INPUT = {"type": "datetime-local", "step": "60"}


class MaintenanceForm(FlaskForm):
    """Field names are the service's, so its field errors land next to the right input. Times are UTC."""

    reason = StringField("Reason", validators=[InputRequired(), Length(max=svc.MAX_REASON)])
    starts_at = StringField("Starts (UTC)", validators=[InputRequired()], render_kw=TIME_INPUT)
    ends_at = StringField("Ends (UTC)", validators=[InputRequired()], render_kw=TIME_INPUT)
    alert_source_ids = SelectMultipleField("Alert sources", coerce=int, validate_choice=False)
    policy_ids = SelectMultipleField("Escalation policies", coerce=int, validate_choice=False)


def _page(form: MaintenanceForm):
    now = utcnow()
    form.alert_source_ids.choices = choice_list([(s.id, s.name) for s in list_alert_sources(db.session)])
    form.policy_ids.choices = choice_list([(p.id, p.name) for p in list_policies(db.session)])
    if not form.is_submitted():
        form.starts_at.data = form.starts_at.data or now.strftime("%Y-%m-%dT%H:%M")
        form.ends_at.data = form.ends_at.data or (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    windows = svc.list_windows(db.session, now=now, limit=50)
    return render_template("maintenance.html", windows=windows, form=form, now=now), form_status(form)


@bp.get("/maintenance")
@login_required_role("viewer")
def maintenance():
    """Maintenance windows: state, what each covers, until when."""
    return _page(MaintenanceForm())


@bp.post("/maintenance")
@login_required_role("admin")
def create_maintenance_view():
    """Create a window; alerts it covers page nobody until it ends."""
    form = MaintenanceForm()
    form.alert_source_ids.choices = form.policy_ids.choices = []
    return form_action(
        lambda: svc.create_window(db.session, starts_at=form.starts_at.data, ends_at=form.ends_at.data,
                                  reason=form.reason.data, alert_source_ids=form.alert_source_ids.data,
                                  policy_ids=form.policy_ids.data, actor=current_user._get_current_object(),
                                  now=utcnow()),
        form=form, page=_page, done="Maintenance window created.", then=url_for("ui.maintenance"))


@bp.post("/maintenance/<int:window_id>/end")
@login_required_role("admin")
def end_maintenance_view(window_id: int):
    """End a window now; incidents it held are paged at the worker's next cycle."""
    return form_action(lambda: svc.end_window(db.session, svc.get_window(db.session, window_id),
                                              actor=current_user._get_current_object(), now=utcnow()),
                       done="Maintenance window ended; held incidents page now.", then=url_for("ui.maintenance"))


@bp.post("/maintenance/<int:window_id>/delete")
@login_required_role("admin")
def delete_maintenance_view(window_id: int):
    """Delete a window; incidents it held are paged at the worker's next cycle."""
    return form_action(lambda: svc.delete_window(db.session, svc.get_window(db.session, window_id),
                                                 actor=current_user._get_current_object(), now=utcnow()),
                       done="Maintenance window deleted.", then=url_for("ui.maintenance"))
