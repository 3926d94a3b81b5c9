"""`flask pagerpal demo-data`: a fresh database gets a populated product; one with incidents is refused."""

from __future__ import annotations

from sqlalchemy import func, select

from pagerpal_core.models import AlertSource, EscalationPolicy, Incident, Rotation, Schedule, ScheduleOverride, User
from pagerpal_web.extensions import db
from tests.factories import make_user
from tests.web.conftest import login


def _counts(app) -> dict:
    with app.app_context():
        statuses = dict(db.session.execute(select(Incident.status, func.count()).group_by(Incident.status)).all())
        return {"users": db.session.scalar(select(func.count(User.id))),
                "schedules": db.session.scalar(select(func.count(Schedule.id))),
                "rotations": db.session.scalar(select(func.count(Rotation.id))),
                "overrides": db.session.scalar(select(func.count(ScheduleOverride.id))),
                "policies": db.session.scalar(select(func.count(EscalationPolicy.id))),
                "kinds": set(db.session.scalars(select(AlertSource.kind))),
                "statuses": statuses}


def test_demo_data_on_a_fresh_database_populates_the_dashboard(app, runner):
    result = runner.invoke(args=["pagerpal", "demo-data"])
    assert result.exit_code == 0, result.output
    assert "incidents:" in result.output
    counts = _counts(app)
    assert counts["users"] == 6 and counts["schedules"] == 3 and counts["rotations"] == 3
    assert counts["overrides"] == 1 and counts["policies"] == 2
    assert counts["kinds"] == {"generic", "grafana", "cloudwatch", "alertmanager", "pagerduty"}
    assert {"triggered", "acknowledged", "resolved"} <= set(counts["statuses"])

    with app.app_context():
        make_user(db.session, role="admin", email="admin@example.test")
        db.session.commit()
    client = app.test_client()
    login(client, "admin@example.test")
    html = client.get("/dashboard").get_data(as_text=True)
    assert "Checkout 5xx above 1%" in html            # triggered
    assert "RDS CPU above 90% for 5 minutes" in html  # acknowledged
    assert 'id="getting-started"' not in html         # every step is done


def test_demo_data_refuses_a_database_with_incidents_unless_forced(app, runner):
    assert runner.invoke(args=["pagerpal", "demo-data"]).exit_code == 0
    before = _counts(app)
    refused = runner.invoke(args=["pagerpal", "demo-data"])
    assert refused.exit_code == 1
    assert "already has" in refused.output and "--force" in refused.output
    assert _counts(app) == before

    forced = runner.invoke(args=["pagerpal", "demo-data", "--force"])
    assert forced.exit_code == 0, forced.output
    after = _counts(app)
    # The team, schedules and sources are reused; only incidents are added.
    assert after["users"] == before["users"] and after["schedules"] == before["schedules"]
    assert sum(after["statuses"].values()) == 2 * sum(before["statuses"].values())


def test_v1_database_urls_work_unchanged():
    """PagerPal v1 documented postgresql+psycopg:// URLs: they name the same database."""
    from pagerpal_core.settings import Settings

    settings = Settings.from_env(environ={"PAGERPAL_INSTANCE_PATH": "/tmp/pp-inst",
                                          "DATABASE_URL": "postgresql+psycopg://pagerpal:pw@db:5432/pagerpal"})
    assert settings.database_url == "postgresql+psycopg2://pagerpal:pw@db:5432/pagerpal"
