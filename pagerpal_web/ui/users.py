"""/users: accounts and responder identities, their roles and contact methods."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from pagerpal_core.errors import DomainError
from pagerpal_core.models import User
from pagerpal_core.services.coverage import my_shifts
from pagerpal_core.services.delivery_health import contact_outcomes, send_test_page
from pagerpal_core.services.notification_rules import can_edit_rules, list_notification_rules, set_notification_rules
from pagerpal_core.services.users import (
    add_contact_method,
    create_user,
    deactivate_user,
    ensure_login_admin,
    get_contact_method,
    get_user,
    list_users,
    reactivate_user,
    refuse_self_lockout,
    remove_contact_method,
    set_role,
    user_footprint,
)
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import apply_errors, form_status, settings
from pagerpal_web.ui.forms import ConfirmForm, ContactForm, RoleForm, UserForm


def _list_page(form: UserForm):
    users = list_users(db.session)
    return render_template("users.html", users=users, form=form), form_status(form)


@bp.get("/users")
@login_required_role("viewer")
def users():
    """Everyone PagerPal knows, with the create form for admins."""
    return _list_page(UserForm())


@bp.post("/users")
@login_required_role("admin")
def create_user_view():
    """Create an account (with a password) or a responder identity (without)."""
    form = UserForm()
    if not form.validate_on_submit():
        return _list_page(form)
    contacts = []
    if form.channel.data:
        contacts.append({"channel": form.channel.data, "destination": form.destination.data or ""})
    try:
        user = create_user(db.session, email=form.email.data, name=form.name.data, role=form.role.data,
                           password=form.password.data or None, timezone=form.timezone.data.strip(),
                           contact_methods=contacts)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        apply_errors(form, exc, aliases={"contact_methods[0]": "destination"})
        return _list_page(form)
    flash(f"Created {user.name}.", "success")
    return redirect(url_for("ui.user_detail", user_id=user.id), code=303)


def _detail_page(user: User, *, role_form=None, contact_form=None):
    role_form = role_form or RoleForm(data={"role": user.role})
    contact_form = contact_form or ContactForm(prefix="contact")
    footprint = user_footprint(db.session, user, now=utcnow())
    status = max(form_status(role_form), form_status(contact_form))
    return render_template("user_detail.html", user=user, role_form=role_form, contact_form=contact_form,
                           confirm_form=ConfirmForm(), memberships=footprint.memberships,
                           can_edit_rules=can_edit_rules(current_user, user),
                           rule_delays={r.contact_method_id: r.delay_minutes
                                        for r in list_notification_rules(db.session, user)},
                           open_assigned=footprint.open_assigned,
                           outcomes=contact_outcomes(db.session, list(user.contact_methods)),
                           shifts=my_shifts(db.session, user, now=utcnow())), status


@bp.get("/users/<int:user_id>")
@login_required_role("viewer")
def user_detail(user_id: int):
    """One user: role, contact methods, teams, and (for admins) the forms that change them."""
    return _detail_page(get_user(db.session, user_id))


@bp.post("/users/<int:user_id>/role")
@login_required_role("admin")
def user_role(user_id: int):
    """Change a role; the user's existing sessions end (their auth version changes)."""
    user = get_user(db.session, user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        return _detail_page(user, role_form=form)
    try:
        refuse_self_lockout(current_user, user, role=form.role.data)
    except DomainError as exc:
        apply_errors(form, exc)
        return _detail_page(user, role_form=form)
    set_role(db.session, user, form.role.data)
    ensure_login_admin(db.session)
    db.session.commit()
    flash(f"{user.name} is now {user.role}.", "success")
    return redirect(url_for("ui.user_detail", user_id=user.id), code=303)


@bp.post("/users/<int:user_id>/contacts")
@login_required_role("admin")
def user_add_contact(user_id: int):
    """Add a contact method (validated like the ones given at creation)."""
    user = get_user(db.session, user_id)
    form = ContactForm(prefix="contact")
    if not form.validate_on_submit():
        return _detail_page(user, contact_form=form)
    try:
        method = add_contact_method(db.session, user, channel=form.channel.data,
                                    destination=form.destination.data)
    except DomainError as exc:
        db.session.rollback()
        apply_errors(form, exc)
        return _detail_page(user, contact_form=form)
    db.session.commit()
    flash(f"Added {method.channel} contact for {user.name}.", "success")
    return redirect(url_for("ui.user_detail", user_id=user.id), code=303)


@bp.post("/users/<int:user_id>/contacts/<int:method_id>/delete")
@login_required_role("admin")
def user_delete_contact(user_id: int, method_id: int):
    """Remove one contact method; pages already queued to it are unaffected."""
    user = get_user(db.session, user_id)
    remove_contact_method(db.session, get_contact_method(db.session, user, method_id))
    db.session.commit()
    flash("Contact method removed.", "success")
    return redirect(url_for("ui.user_detail", user_id=user.id), code=303)


@bp.post("/users/<int:user_id>/contacts/<int:method_id>/test")
@login_required_role("viewer")
def user_test_contact(user_id: int, method_id: int):
    """Send a test page to one contact method through the outbox (admin or the user themselves)."""
    user = get_user(db.session, user_id)
    if not can_edit_rules(current_user, user):
        abort(403)
    method = get_contact_method(db.session, user, method_id)
    try:
        send_test_page(db.session, method, base_url=settings().base_url, now=utcnow())
    except DomainError as exc:
        db.session.rollback()
        flash(f"Test not sent: {exc.message}", "error")
        return _detail_page(user)[0], exc.status
    db.session.commit()
    flash(f"Test page queued to {method.channel}; the worker sends it like a real page "
          "(recorded as suppressed while sending is disabled).", "success")
    return redirect(url_for("ui.user_detail", user_id=user.id), code=303)


def _rules_from_form(user: User) -> list[dict]:
    """`delay-<method id>` fields → rules ordered by delay (blank = method not used)."""
    rules = []
    for method in user.contact_methods:
        raw = (request.form.get(f"delay-{method.id}") or "").strip()
        if raw:
            delay = int(raw) if raw.lstrip("-").isdigit() and len(raw) < 10 else raw
            rules.append({"contact_method_id": method.id, "delay_minutes": delay})
    return sorted(rules, key=lambda r: (r["delay_minutes"] if isinstance(r["delay_minutes"], int) else 0,
                                        r["contact_method_id"]))


@bp.post("/users/<int:user_id>/notification-rules")
@login_required_role("viewer")
def user_notification_rules(user_id: int):
    """Replace the user's notification rules (admin or the user themselves); all blank = the default."""
    user = get_user(db.session, user_id)
    try:
        set_notification_rules(db.session, user, _rules_from_form(user), actor=current_user, now=utcnow())
    except DomainError as exc:
        db.session.rollback()
        if exc.status != 422:
            raise
        for problem in exc.fields.values():
            flash(f"Notification rules not saved: {problem}", "error")
        return _detail_page(user)[0], 422
    db.session.commit()
    flash(f"Notification rules for {user.name} saved.", "success")
    return redirect(url_for("ui.user_detail", user_id=user.id), code=303)


def _deactivation_effect(user: User) -> dict:
    """What deactivating `user` touches, counted, for the confirmation page."""
    footprint = user_footprint(db.session, user, now=utcnow())
    return {"open_incidents": footprint.open_assigned, "teams": len(footprint.memberships),
            "future_entries": footprint.future_entries}


@bp.route("/users/<int:user_id>/deactivate", methods=["GET", "POST"])
@login_required_role("admin")
def user_deactivate(user_id: int):
    """GET explains what deactivation does; POST does it."""
    user = get_user(db.session, user_id)
    form = ConfirmForm()
    if request.method == "POST":  # CSRFProtect has already checked the token
        refuse_self_lockout(current_user, user, deactivate=True)
        deactivate_user(db.session, user, actor=current_user._get_current_object(), now=utcnow())
        ensure_login_admin(db.session)
        db.session.commit()
        flash(f"{user.name} is deactivated. Check the coverage of their schedules and policies.", "success")
        return redirect(url_for("ui.user_detail", user_id=user.id), code=303)
    return render_template("user_deactivate.html", user=user, form=form, effect=_deactivation_effect(user))


@bp.post("/users/<int:user_id>/reactivate")
@login_required_role("admin")
def user_reactivate(user_id: int):
    """Make a deactivated user active again (they rejoin on-call resolution)."""
    user = get_user(db.session, user_id)
    reactivate_user(db.session, user)
    db.session.commit()
    flash(f"{user.name} is active again.", "success")
    return redirect(url_for("ui.user_detail", user_id=user.id), code=303)

