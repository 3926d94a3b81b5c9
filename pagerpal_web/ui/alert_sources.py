"""/alert-sources: monitoring integrations, their keys (shown in full once) and test alerts."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from pagerpal_core.models import EscalationPolicy
from pagerpal_core.services import alert_sources as source_service
from pagerpal_core.services.escalation_policies import list_policies
from pagerpal_core.services.ingestion import send_test_alert
from pagerpal_core.services.sns import list_sns_subscriptions, sns_subscriptions_by_source
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import form_action, form_status, policy_choices, settings, shown_once, team_choices
from pagerpal_web.ui.forms import AlertSourceForm, ConfirmForm
from pagerpal_web.webhooks.alerts import WEBHOOK_PATHS


def _fill_choices(form: AlertSourceForm) -> AlertSourceForm:
    form.policy_id.choices = policy_choices("— none (incidents are unrouted) —")
    form.team_id.choices = team_choices()
    return form


def _list_page(form: AlertSourceForm):
    _fill_choices(form)
    sources = source_service.list_alert_sources(db.session)
    policies = {p.id: p for p in list_policies(db.session)}
    subscriptions = sns_subscriptions_by_source(db.session)
    return render_template("alert_sources.html", sources=sources, form=form, policies=policies,
                           subscriptions=subscriptions, now=utcnow()), form_status(form)


@bp.get("/alert-sources")
@login_required_role("viewer")
def alert_sources():
    """Every source with its masked key, routing, SNS state and last alert."""
    return _list_page(AlertSourceForm())


def key_page(source, key: str, *, regenerated: bool):
    """The one page that shows a full key. Never cached, never stored anywhere but the hash.

    It answers the POST directly instead of redirecting: carrying the key across a
    redirect would mean putting it in the session cookie or the URL.
    """
    base = settings().base_url.rstrip("/")
    return shown_once("alert_source_key.html", source=source, key=key, regenerated=regenerated, base=base,
                      endpoint=base + WEBHOOK_PATHS.get(source.kind, WEBHOOK_PATHS["generic"]),
                      endpoints=WEBHOOK_PATHS)


@bp.post("/alert-sources")
@login_required_role("admin")
def create_alert_source_view():
    """Create a source and show its key once."""
    form = _fill_choices(AlertSourceForm())
    return form_action(
        lambda: source_service.create_alert_source(
            db.session, name=form.name.data, kind=form.kind.data, policy_id=form.policy_id.data,
            team_id=form.team_id.data, sns_verification=form.sns_verification.data, now=utcnow()),
        form=form, page=_list_page, then=lambda issued: key_page(issued.source, issued.key, regenerated=False))


def _detail_page(source, form=None):
    form = form or AlertSourceForm(prefix="source", data={
        "name": source.name, "kind": source.kind, "policy_id": source.policy_id, "team_id": source.team_id,
        "sns_verification": source.sns_verification})
    _fill_choices(form)
    subscriptions = list_sns_subscriptions(db.session, source.id)
    open_count = source_service.count_open_incidents(db.session, source)
    policy = db.session.get(EscalationPolicy, source.policy_id) if source.policy_id else None
    base = settings().base_url.rstrip("/")
    return render_template("alert_source_detail.html", source=source, form=form, subscriptions=subscriptions,
                           open_count=open_count, policy=policy, now=utcnow(),
                           endpoint=base + WEBHOOK_PATHS.get(source.kind, WEBHOOK_PATHS["generic"])), form_status(form)


@bp.get("/alert-sources/<int:source_id>")
@login_required_role("viewer")
def alert_source_detail(source_id: int):
    """One source: masked key, routing, SNS subscriptions, and its admin actions."""
    return _detail_page(source_service.get_alert_source(db.session, source_id))


@bp.post("/alert-sources/<int:source_id>")
@login_required_role("admin")
def update_alert_source_view(source_id: int):
    """Change the name, kind, policy or team."""
    source = source_service.get_alert_source(db.session, source_id)
    form = _fill_choices(AlertSourceForm(prefix="source"))
    return form_action(
        lambda: source_service.update_alert_source(db.session, source, now=utcnow(), name=form.name.data,
                                                   kind=form.kind.data, policy_id=form.policy_id.data,
                                                   team_id=form.team_id.data,
                                                   sns_verification=form.sns_verification.data),
        form=form, page=lambda form: _detail_page(source, form), done="Alert source saved.",
        then=url_for("ui.alert_source_detail", source_id=source_id))


@bp.route("/alert-sources/<int:source_id>/regenerate", methods=["GET", "POST"])
@login_required_role("admin")
def regenerate_alert_source_view(source_id: int):
    """GET asks for confirmation (the old key stops working); POST issues the new key."""
    source = source_service.get_alert_source(db.session, source_id)
    if request.method == "POST":
        issued = source_service.regenerate_alert_source_key(db.session, source, now=utcnow())
        db.session.commit()
        return key_page(issued.source, issued.key, regenerated=True)
    return render_template("alert_source_regenerate.html", source=source, form=ConfirmForm())


@bp.post("/alert-sources/<int:source_id>/active")
@login_required_role("admin")
def toggle_alert_source_view(source_id: int):
    """Activate or deactivate (an inactive source's alerts get 403)."""
    source = source_service.get_alert_source(db.session, source_id)
    active = request.form.get("active") == "true"
    source_service.set_alert_source_active(db.session, source, active, now=utcnow())
    db.session.commit()
    flash(f"{source.name} is {'active' if active else 'inactive: its alerts are refused'}.", "success")
    return redirect(url_for("ui.alert_source_detail", source_id=source_id), code=303)


@bp.post("/alert-sources/<int:source_id>/test")
@login_required_role("admin")
def test_alert_source_view(source_id: int):
    """Open the source's test incident, exactly as a webhook would, and show it."""
    source = source_service.get_alert_source(db.session, source_id)
    detail = url_for("ui.alert_source_detail", source_id=source_id)
    return form_action(
        lambda: send_test_alert(db.session, source, now=utcnow(), base_url=settings().base_url),
        done=lambda result: f"Test alert sent: {result.message}", failed=detail,
        then=lambda result: url_for("ui.incident_detail", incident_id=result.incident_id)
        if result.incident_id else detail)


@bp.post("/alert-sources/<int:source_id>/delete")
@login_required_role("admin")
def delete_alert_source_view(source_id: int):
    """Delete a source that never opened an incident (otherwise deactivate it)."""
    source = source_service.get_alert_source(db.session, source_id)
    return form_action(lambda: source_service.delete_alert_source(db.session, source), done="Alert source deleted.",
                       then=url_for("ui.alert_sources"), failed=url_for("ui.alert_source_detail", source_id=source_id))
