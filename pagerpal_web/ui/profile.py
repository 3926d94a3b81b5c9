"""/profile: every signed-in person looks after their own details, password and contact methods;
/users/<id>/edit: admins change anyone's details. The rules live in core (services/profile.py,
services/users.py); these views parse, call one service, commit and render."""

from __future__ import annotations

from flask import redirect, render_template, url_for
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional

from pagerpal_core.security import MIN_PASSWORD_LENGTH, mask_destination
from pagerpal_core.services.delivery_health import contact_outcomes, send_test_page
from pagerpal_core.services.profile import change_own_password, update_profile
from pagerpal_core.services.users import (
    add_contact_method,
    get_contact_method,
    get_user,
    remove_contact_method,
    update_user,
)
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import form_action, form_status, settings
from pagerpal_web.ui.forms import ContactForm

ZONE_HINT = "IANA name, e.g. Europe/Berlin or America/New_York; times in the UI are shown in it"


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    timezone = StringField("Time zone", validators=[DataRequired(), Length(max=64)], description=ZONE_HINT)


class AdminUserForm(ProfileForm):
    password = PasswordField("New password (leave empty to keep; the user's sessions end)",
                             validators=[Optional(), Length(min=MIN_PASSWORD_LENGTH, max=256)])


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=256)])
    new_password = PasswordField(f"New password (at least {MIN_PASSWORD_LENGTH} characters)",
                                 validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=256)])
    confirm = PasswordField("Repeat the new password", validators=[DataRequired(), Length(max=256)])


def _me():
    return current_user._get_current_object()


def _profile_page(*, details=None, password=None, contact=None):
    me = _me()
    forms = {"details": details or ProfileForm(prefix="profile", obj=me, formdata=None),
             "password": password or PasswordChangeForm(prefix="password", formdata=None),
             "contact": contact or ContactForm(prefix="contact", formdata=None)}
    status = max(form_status(f) for f in forms.values())
    return render_template("profile.html", me=me, forms=forms,
                           outcomes=contact_outcomes(db.session, list(me.contact_methods))), status


@bp.get("/profile")
@login_required_role("viewer")
def profile():
    """My details, password, contact methods (with Send test) and a link to my shifts."""
    return _profile_page()


@bp.post("/profile")
@login_required_role("viewer")
def profile_update():
    """Change my name, email and time zone."""
    form = ProfileForm(prefix="profile")
    return form_action(lambda: update_profile(db.session, _me(), name=form.name.data, email=form.email.data,
                                              timezone=(form.timezone.data or "").strip()),
                       form=form, page=lambda form: _profile_page(details=form), done="Profile saved.",
                       then=url_for("ui.profile"))


def _signed_in_again(ended: int):
    # The password change ended every session of the account (this one too): sign this browser
    # in again with the new auth version, which also starts a fresh server-side session.
    login_user(_me())
    db.session.commit()
    return redirect(url_for("ui.profile"), code=303)


@bp.post("/profile/password")
@login_required_role("viewer")
def profile_password():
    """Change my password (current one required); every other session of mine ends."""
    form = PasswordChangeForm(prefix="password")
    return form_action(lambda: change_own_password(db.session, _me(), current=form.current_password.data,
                                                   new=form.new_password.data, confirm=form.confirm.data),
                       form=form, page=lambda form: _profile_page(password=form),
                       done="Password changed. Your other sessions were signed out.", then=_signed_in_again)


@bp.post("/profile/contacts")
@login_required_role("viewer")
def profile_add_contact():
    """Add one of my contact methods."""
    form = ContactForm(prefix="contact")
    return form_action(lambda: add_contact_method(db.session, _me(), channel=form.channel.data,
                                                  destination=form.destination.data),
                       form=form, page=lambda form: _profile_page(contact=form),
                       done=lambda method: f"Added {method.channel} contact.", then=url_for("ui.profile"))


@bp.post("/profile/contacts/<int:method_id>/delete")
@login_required_role("viewer")
def profile_delete_contact(method_id: int):
    """Remove one of my contact methods."""
    return form_action(lambda: remove_contact_method(db.session, get_contact_method(db.session, _me(), method_id)),
                       done="Contact method removed.", then=url_for("ui.profile"))


@bp.post("/profile/contacts/<int:method_id>/test")
@login_required_role("viewer")
def profile_test_contact(method_id: int):
    """Queue a test page to one of my contact methods (the worker sends it like a real page)."""
    def send():
        method = get_contact_method(db.session, _me(), method_id)
        # A `test` row for this very contact method, so its outcome shows as the method's last.
        send_test_page(db.session, method, base_url=settings().base_url, now=utcnow())
        return method
    return form_action(send, then=url_for("ui.profile"),
                       done=lambda m: f"Test page queued to {m.channel} {mask_destination(m.destination)}; "
                                      "the worker sends it (suppressed while sending is disabled).")


def _admin_edit_page(user, form=None):
    form = form or AdminUserForm(prefix="user", obj=user, formdata=None)
    return render_template("user_edit.html", user=user, form=form), form_status(form)


@bp.get("/users/<int:user_id>/edit")
@login_required_role("admin")
def user_edit(user_id: int):
    """An admin's form for anyone's name, email, time zone and password."""
    return _admin_edit_page(get_user(db.session, user_id))


@bp.post("/users/<int:user_id>/edit")
@login_required_role("admin")
def user_edit_save(user_id: int):
    """Save an admin's changes to a user (a new password ends that user's sessions)."""
    user = get_user(db.session, user_id)
    form = AdminUserForm(prefix="user")
    changes = {"name": form.name.data, "email": form.email.data, "timezone": (form.timezone.data or "").strip()}
    if form.password.data:
        changes["password"] = form.password.data
    return form_action(lambda: update_user(db.session, user, **changes), form=form,
                       page=lambda form: _admin_edit_page(user, form), done=lambda saved: f"Saved {saved.name}.",
                       then=url_for("ui.user_detail", user_id=user.id))
