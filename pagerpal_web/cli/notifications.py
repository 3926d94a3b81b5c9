"""Notification commands: send-test-notification."""

from __future__ import annotations

import click

from pagerpal_core.errors import DomainError
from pagerpal_core.services.provider_health import channel_health
from pagerpal_core.services.sample_pages import queue_test_notification
from pagerpal_core.timeutil import utcnow
from pagerpal_web.cli import fail, pagerpal
from pagerpal_web.config import settings as current_settings
from pagerpal_web.extensions import db


@pagerpal.command("send-test-notification")
@click.option("--channel", required=True, type=click.Choice(["sms", "whatsapp", "email"]),
              help="The channel to test.")
@click.option("--to", "destination", required=True,
              help="E.164 number (+14155550123) for sms/whatsapp, an address for email.")
def send_test_notification_command(channel: str, destination: str):
    """Queue one test notification through the outbox; the worker sends it like a real page."""

    settings = current_settings()
    try:
        notification = queue_test_notification(db.session, channel=channel, destination=destination,
                                               base_url=settings.base_url, now=utcnow(), actor="cli")
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        fail(exc.message)
    click.echo(f"Queued test notification {notification.id} ({channel} to {notification.destination}).")
    health = channel_health(settings, channel)
    click.echo(f"Channel {channel}: {health.summary}.")
    click.echo("The worker (pagerpal-worker) sends it; check its status on /settings or in the worker log.")
