"""/heartbeats: heartbeat monitors with their last ping and state; admins create and delete them.

Creating one answers with the page that shows its ping URL, once (like an alert source's key):
carrying the token across a redirect would put it in the session cookie or a URL.
"""

from __future__ import annotations

from flask import render_template, url_for
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional

from pagerpal_core.services import heartbeats as svc
from pagerpal_core.services.escalation_policies import list_policies
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import form_action, form_status, policy_choices, settings, shown_once
from pagerpal_web.ui.forms import optional_int


class HeartbeatForm(FlaskForm):
    """Field names are the service's, so its field errors land next to the right input."""

    name = StringField("Name", validators=[InputRequired(), Length(max=svc.MAX_NAME)])
    interval_seconds = IntegerField("Ping expected every (seconds)", default=3600, validators=[InputRequired()])
    grace_seconds = IntegerField("Grace (seconds)", default=300, validators=[Optional()])
    escalation_policy_id = SelectField("Escalation policy", coerce=optional_int, validators=[InputRequired()])


def _list_page(form: HeartbeatForm):
    form.escalation_policy_id.choices = policy_choices()
    monitors = svc.list_heartbeats(db.session)
    policies = {p.id: p for p in list_policies(db.session)}
    return render_template("heartbeats.html", monitors=monitors, policies=policies, form=form, now=utcnow(),
                           mask=svc.mask_token, state_label=svc.heartbeat_state_label), form_status(form)


@bp.get("/heartbeats")
@login_required_role("viewer")
def heartbeats():
    """Every monitor: schedule, policy, last ping, state, and the incident a silence opened."""
    return _list_page(HeartbeatForm())


def token_page(monitor, token: str):
    """The one page that shows a monitor's full ping URL; never cached."""
    url = settings().base_url + url_for("webhooks.heartbeat_ping", token=token)
    return shown_once("heartbeat_token.html", monitor=monitor, ping_url=url)


@bp.post("/heartbeats")
@login_required_role("admin")
def create_heartbeat_view():
    """Create a monitor and show its ping URL once."""
    form = HeartbeatForm()
    form.escalation_policy_id.choices = policy_choices()
    return form_action(
        lambda: svc.create_heartbeat(db.session, name=form.name.data, interval_seconds=form.interval_seconds.data,
                                     grace_seconds=form.grace_seconds.data or 0,
                                     escalation_policy_id=form.escalation_policy_id.data, now=utcnow()),
        form=form, page=_list_page, then=lambda issued: token_page(issued.monitor, issued.token))


@bp.post("/heartbeats/<int:heartbeat_id>/delete")
@login_required_role("admin")
def delete_heartbeat_view(heartbeat_id: int):
    """Delete a monitor; an incident it opened stays open until resolved."""
    return form_action(lambda: svc.delete_heartbeat(db.session, svc.get_heartbeat(db.session, heartbeat_id)),
                       done="Heartbeat monitor deleted.", then=url_for("ui.heartbeats"))
