"""All models; importing this package registers every table on `Base.metadata`."""

from pagerpal_core.db import Base
from pagerpal_core.models.action_links import ActionLink, InboundMessage, ReplyCode  # noqa: F401
from pagerpal_core.models.alert_sources import AlertSource, SnsSigningCert, SnsSubscription  # noqa: F401
from pagerpal_core.models.audit import AuditEvent  # noqa: F401
from pagerpal_core.models.calendar_feeds import CalendarFeedToken  # noqa: F401
from pagerpal_core.models.escalation import EscalationLevel, EscalationPolicy, EscalationTarget
from pagerpal_core.models.heartbeats import HeartbeatMonitor  # noqa: F401
from pagerpal_core.models.incidents import Incident, IncidentEvent
from pagerpal_core.models.jobs import AppState, AuthThrottle, JobStatus, UserSession  # noqa: F401
from pagerpal_core.models.maintenance import MaintenanceHold, MaintenanceWindow  # noqa: F401
from pagerpal_core.models.notifications import Notification, NotificationRule, ProviderPause  # noqa: F401
from pagerpal_core.models.schedules import Rotation, RotationParticipant, Schedule, ScheduleEntry, ScheduleOverride
from pagerpal_core.models.users import ContactMethod, Team, TeamMembership, User

__all__ = [
    "Base", "AlertSource", "SnsSubscription", "EscalationLevel", "EscalationPolicy", "EscalationTarget",
    "Incident", "IncidentEvent", "AppState", "AuthThrottle", "JobStatus", "Notification", "Rotation",
    "RotationParticipant", "Schedule", "ScheduleEntry", "ScheduleOverride", "ContactMethod", "Team",
    "TeamMembership", "User",
]
