"""WTForms for the UI; every form carries a CSRF token (Flask-WTF)."""

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DateTimeLocalField,
    EmailField,
    FieldList,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, NumberRange, Optional, ValidationError

from pagerpal_core.security import MIN_PASSWORD_LENGTH


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


class BootstrapForm(FlaskForm):
    name = StringField("Your name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=256)])
    confirm = PasswordField("Repeat password", validators=[DataRequired(), EqualTo("password",
                                                                                     "Passwords differ")])


# --- shared pieces ---------------------------------------------------------------------

try:  # WTForms 3.3 deprecates (value, label) tuples in favour of SelectChoice.
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    SelectChoice = None


def choice_list(pairs) -> list:
    """(value, label) pairs as select choices in the form this WTForms version prefers."""
    if SelectChoice is None:
        return list(pairs)
    return [SelectChoice(value=value, label=label) for value, label in pairs]


def optional_int(value):
    """Coerce a select's value to int, with "" (the blank choice) as None."""
    if value in ("", None, "None"):
        return None
    return int(value)


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token: confirmations, toggles, deletes."""


class ActingAsForm(FlaskForm):
    """Every incident action records who did it; a responder without a login can be chosen."""

    # Who may be named is decided by core's resolve_acting_user (the API's rule too), not by the choices.
    acting_as = SelectField("Acting as", coerce=optional_int, validators=[InputRequired()], validate_choice=False)


# --- incidents -------------------------------------------------------------------------

class ResolveForm(ActingAsForm):
    note = TextAreaField("Resolution note (optional)", validators=[Optional(), Length(max=2000)])


class ReassignForm(ActingAsForm):
    user_id = SelectField("Assign to", coerce=optional_int, validators=[InputRequired()])


class NoteForm(ActingAsForm):
    text = TextAreaField("Note", validators=[DataRequired(), Length(max=4000)])


# --- users -----------------------------------------------------------------------------

ROLE_CHOICES = [("responder", "Responder — incident actions"), ("viewer", "Viewer — read only"),
                ("admin", "Admin — configuration")]
CHANNEL_CHOICES = [("sms", "SMS"), ("whatsapp", "WhatsApp"), ("email", "Email"), ("webhook", "Chat webhook (URL)")]


class UserForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField("Role", choices=choice_list(ROLE_CHOICES), default="responder")
    password = PasswordField("Password (leave empty for a responder who only gets paged)",
                             validators=[Optional(), Length(min=MIN_PASSWORD_LENGTH, max=256)])
    timezone = StringField("Time zone", default="UTC", validators=[DataRequired(), Length(max=64)])
    channel = SelectField("First contact method", choices=choice_list([("", "— none —")] + CHANNEL_CHOICES),
                          default="")
    destination = StringField("Phone (E.164) or email", validators=[Optional(), Length(max=254)])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=choice_list(ROLE_CHOICES))


class ContactForm(FlaskForm):
    channel = SelectField("Channel", choices=choice_list(CHANNEL_CHOICES))
    destination = StringField("Phone (E.164), email or webhook URL", validators=[DataRequired(), Length(max=2000)])


# --- teams and schedules ---------------------------------------------------------------

class TeamForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    description = StringField("Description", validators=[Optional(), Length(max=1000)])


class TeamWebhookForm(FlaskForm):
    webhook_url = StringField("Chat webhook URL (blank removes it)", validators=[Optional(), Length(max=2000)])
    webhook_format = SelectField("Body", choices=[("slack", 'Slack/Mattermost {"text": …}'),
                                                  ("json", "Generic JSON (incident fields)")])


class MemberForm(FlaskForm):
    user_id = SelectField("Add member", coerce=optional_int, validators=[InputRequired()])


class ScheduleForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    timezone = StringField("Time zone (IANA)", default="UTC", validators=[DataRequired(), Length(max=64)])
    team_id = SelectField("Team", coerce=optional_int, validators=[Optional()])
    description = StringField("Description", validators=[Optional(), Length(max=1000)])


class ShiftForm(FlaskForm):
    """An entry (or, with a reason, an override): times in the schedule's own time zone."""

    user_id = SelectField("Who", coerce=optional_int, validators=[InputRequired()])
    starts_at = DateTimeLocalField("Starts", format="%Y-%m-%dT%H:%M", validators=[InputRequired()])
    ends_at = DateTimeLocalField("Ends", format="%Y-%m-%dT%H:%M", validators=[InputRequired()])


class OverrideForm(ShiftForm):
    reason = StringField("Reason", validators=[Optional(), Length(max=500)])


class RotationEditForm(FlaskForm):
    """A rotation's settings, edited in place (the turn order has its own buttons)."""

    name = StringField("Name", validators=[Optional(), Length(max=120)])
    shift_length = IntegerField("Shift length", default=1, validators=[InputRequired(), NumberRange(min=1)])
    shift_unit = SelectField("Unit", choices=choice_list([("weeks", "weeks"), ("days", "days"), ("hours", "hours")]),
                             default="weeks")
    handoff_time = StringField("Handoff time (HH:MM)", default="09:00", validators=[DataRequired()])
    start_date = DateField("First handoff on", validators=[InputRequired()])


# Turn-order slots on the new-rotation form; more people are added on the rotation afterwards.
ROTATION_SLOTS = 6


class RotationForm(RotationEditForm):
    """A new rotation: its settings and the turn order as numbered slots, read in slot order.

    A multi-select would submit in the list's (alphabetical) order; numbered slots keep the
    order the admin chose, with no script.
    """

    participants = FieldList(SelectField("Participant", coerce=optional_int, validators=[Optional()],
                                         validate_choice=False),
                             label="Participants, in turn order", min_entries=ROTATION_SLOTS,
                             max_entries=ROTATION_SLOTS)

    def validate_participants(self, field):
        if not any(entry.data for entry in field.entries):
            raise ValidationError("Choose at least one person")

    def chosen(self) -> list[int]:
        """The chosen people in slot order (empty slots skipped)."""
        return [entry.data for entry in self.participants.entries if entry.data]


# --- escalation policies ---------------------------------------------------------------

class PolicyForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    description = StringField("Description", validators=[Optional(), Length(max=1000)])
    team_id = SelectField("Team", coerce=optional_int, validators=[Optional()])
    repeat_count = IntegerField("Repeat the levels (times)", default=0,
                                validators=[InputRequired(), NumberRange(min=0, max=20)])
    ack_timeout_minutes = IntegerField("Page again if acknowledged but not resolved after (minutes, empty: never)",
                                       validators=[Optional(), NumberRange(min=1, max=10080)])


class LevelForm(FlaskForm):
    level_number = IntegerField("Level number", validators=[InputRequired(), NumberRange(min=1, max=1000)])
    delay_minutes = IntegerField("Escalate to the next level after (minutes)", default=15,
                                 validators=[InputRequired(), NumberRange(min=0, max=7 * 24 * 60)])
    target = SelectField("Page", validators=[DataRequired()])


class TargetForm(FlaskForm):
    target = SelectField("Also page", validators=[DataRequired()])


# --- alert sources ---------------------------------------------------------------------

SNS_VERIFICATION_CHOICES = [("verify", "Verify SNS signatures and the key"),
                            ("key-only", "Key only (no signature check)")]
KIND_CHOICES = [("generic", "Generic JSON"), ("grafana", "Grafana"), ("cloudwatch", "CloudWatch via SNS"),
                ("alertmanager", "Prometheus Alertmanager"), ("pagerduty", "PagerDuty-compatible")]


class AlertSourceForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    kind = SelectField("Kind", choices=choice_list(KIND_CHOICES), default="generic")
    policy_id = SelectField("Escalation policy", coerce=optional_int, validators=[Optional()])
    team_id = SelectField("Team", coerce=optional_int, validators=[Optional()])
    sns_verification = SelectField("SNS signatures (CloudWatch)", choices=choice_list(SNS_VERIFICATION_CHOICES),
                                   default="verify")
