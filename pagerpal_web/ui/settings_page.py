"""/settings: is this PagerPal ready to page? Provider readiness, sending mode, worker health."""

from __future__ import annotations

from flask import render_template

from pagerpal_core.services.delivery_health import channel_delivery
from pagerpal_core.services.provider_health import CHANNELS, provider_health, sending_mode
from pagerpal_core.services.self_test import read_self_test
from pagerpal_core.services.system import list_job_health
from pagerpal_core.services.watchdog import read_watchdog_report
from pagerpal_core.timeutil import utcnow
from pagerpal_web.auth import login_required_role
from pagerpal_web.extensions import db
from pagerpal_web.ui import bp
from pagerpal_web.ui.common import settings


@bp.get("/settings")
@login_required_role("viewer")
def settings_page():
    """Read-only: which setting names are missing (never their values), and job heartbeats."""
    config = settings()
    now = utcnow()
    return render_template(
        "settings.html", channels=provider_health(config), mode=sending_mode(config),
        delivery=channel_delivery(db.session, CHANNELS, now=now),
        jobs=list_job_health(db.session, now=now), now=now,
        self_test=read_self_test(db.session),
        watchdog=read_watchdog_report(db.session, now=now, poll_interval=config.worker_poll_interval),
        watchdog_ping=bool(config.watchdog_ping_url), config_view={
            "base_url": config.base_url,
            "environment": config.environment,
            "session_cookie_secure": config.session_cookie_secure,
            "allowed_origins": config.allowed_origins,
            "retry_worker": config.notification_retry_worker_enabled,
            "escalation_worker": config.escalation_worker_enabled,
            "receipt_token": bool(config.infobip_receipt_token),
            # Names what would stop a production start (no secret values in these messages).
            "production_problems": config.production_problems(),
        })
