"""One row of every kind, for tests that call every route with real ids."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update

from pagerpal_core.models import Incident, Notification, User
from pagerpal_core.services import alert_sources, escalation_policies, heartbeats, maintenance, schedules, teams
from pagerpal_core.services.incidents import add_note
from pagerpal_web.extensions import db
from tests.factories import make_user

ADMIN_ID = 900_000  # far from the small ids generated paths hit, so no call renames or locks out the admin


def seed(app, *, admin_email: str | None = None) -> dict:
    """One of everything; returns the path parameters that name the seeded rows.

    With `admin_email`, also an admin with that email and id ADMIN_ID.
    """
    now = datetime.now(UTC)
    with app.app_context():
        session = db.session
        if admin_email:
            admin = make_user(session, role="admin", email=admin_email)
            session.execute(update(User).where(User.id == admin.id).values(id=ADMIN_ID))
        person = make_user(session, role="responder", contacts=[{"channel": "email",
                                                                 "destination": "p@example.test"}])
        team = teams.create_team(session, name="Fuzz team")
        teams.add_team_member(session, team, person)
        schedule = schedules.create_schedule(session, name="Fuzz schedule", timezone="Europe/Berlin",
                                             team=team)
        entry = schedules.create_entry(session, schedule, user=person, starts_at=now,
                                       ends_at=now + timedelta(hours=8))
        override = schedules.create_override(session, schedule, user=person, starts_at=now,
                                             ends_at=now + timedelta(hours=1))
        rotation = schedules.create_rotation(session, schedule, start_date=date.today(),
                                             participants=[person])
        policy = escalation_policies.create_policy(session, name="Fuzz policy", levels=[
            {"delay_minutes": 5, "targets": [{"type": "schedule", "id": schedule.id}]}])
        level = policy.levels[0]
        source = alert_sources.create_alert_source(session, name="Fuzz source", policy_id=policy.id,
                                                   now=now).source
        incident = Incident(title="Fuzz incident", alert_source_id=source.id, external_id="fuzz-1",
                            severity="high", status="triggered", policy_id=policy.id, created_at=now,
                            updated_at=now, last_seen_at=now)
        session.add(incident)
        session.flush()
        add_note(session, incident, "seeded", actor=person, now=now)
        notification = Notification(incident_id=incident.id, user_id=person.id, channel="email",
                                    destination="p@example.test", status="failed", subject="s", body="b")
        session.add(notification)
        heartbeat = heartbeats.create_heartbeat(session, name="Fuzz heartbeat", interval_seconds=60,
                                                escalation_policy_id=policy.id, now=now).monitor
        # Scheduled for tomorrow, so it holds none of the calls made against the seeded incident.
        window = maintenance.create_window(session, starts_at=now + timedelta(days=1),
                                           ends_at=now + timedelta(days=1, hours=2), reason="Fuzz window",
                                           alert_source_ids=[source.id], now=now)
        session.commit()
        return {
            "user_id": person.id, "method_id": person.contact_methods[0].id, "team_id": team.id,
            "schedule_id": schedule.id, "entry_id": entry.id, "override_id": override.id,
            "rotation_id": rotation.id, "participant_id": rotation.participants[0].id, "policy_id": policy.id,
            "level_id": level.id, "target_id": level.targets[0].id, "source_id": source.id,
            "incident_id": incident.id, "notification_id": notification.id, "heartbeat_id": heartbeat.id,
            "window_id": window.id,
        }
