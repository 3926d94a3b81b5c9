"""WTForms for the UI; every form carries a CSRF token (Flask-WTF)."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

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
