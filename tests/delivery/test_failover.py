"""Failover: a page that cannot reach its person pages their next contact method, in one worker cycle."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from pagerpal_core.models import IncidentEvent, Notification
from pagerpal_core.services.incidents import acknowledge_incident
from pagerpal_core.services.notification_rules import set_notification_rules
from pagerpal_core.services.receipts import apply_delivery_reports
from pagerpal_core.timeutil import utcnow
from pagerpal_worker.loop import run_cycle
from tests.delivery.conftest import make_responder, page, smtp_env
from tests.worker.conftest import make_incident, read


def sms_then_email(session, *, email_after=5):
    """A responder paged by SMS at once and by email `email_after` minutes later."""
    user = make_responder(session)
    sms, email = sorted(user.contact_methods, key=lambda m: m.channel != "sms")
    set_notification_rules(session, user, [{"contact_method_id": sms.id, "delay_minutes": 0},
                                           {"contact_method_id": email.id, "delay_minutes": email_after}],
                           actor=user, now=utcnow())
    session.commit()
    return user


def rows(session, incident):
    return read(session, lambda: session.scalars(select(Notification).where(
        Notification.incident_id == incident.id).order_by(Notification.id)).all())


def failover_lines(session, incident):
    return read(session, lambda: [e.message for e in session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == incident.id, IncidentEvent.kind == "notification_failover"))])


def test_undeliverable_sms_sends_the_email_page_within_one_cycle(session, make_ctx, fake_infobip, fake_smtp):
    user = sms_then_email(session)
    incident = make_incident(session)
    now = utcnow()
    page(session, incident, user, now=now)
    ctx = make_ctx(fake_infobip.url, **smtp_env(fake_smtp))
    run_cycle(ctx, now)
    sms, email = rows(session, incident)
    assert (sms.channel, sms.status, email.status) == ("sms", "sent", "pending")
    assert email.next_attempt_at == now + timedelta(minutes=5)
    assert fake_smtp.messages == []
    # The receipt says the phone is unreachable.
    apply_delivery_reports(session, {"results": [fake_infobip.delivery_report(sms.provider_message_id,
                                                                               "UNDELIVERABLE")]},
                           now=now + timedelta(seconds=20))
    session.commit()
    run_cycle(ctx, now + timedelta(seconds=21))  # one worker cycle, well before the email's rule delay
    assert len(fake_smtp.messages) == 1
    assert fake_smtp.messages[0].rcpt_tos == ["alice@acme.test"]
    assert [r.status for r in rows(session, incident)] == ["undeliverable", "sent"]
    assert failover_lines(session, incident) == [
        "SMS to +15•••••0101 undeliverable (EC_ABSENT_SUBSCRIBER) → email to a••••@acme.test"]
    # Once only: later cycles page nobody else.
    run_cycle(ctx, now + timedelta(minutes=10))
    assert len(fake_smtp.messages) == 1 and len(failover_lines(session, incident)) == 1


def test_permanent_sms_failure_pages_email_next(session, make_ctx, fake_infobip, fake_smtp):
    user = sms_then_email(session)
    incident = make_incident(session)
    now = utcnow()
    page(session, incident, user, now=now)
    fake_infobip.fail_next(400, text="invalid destination")
    ctx = make_ctx(fake_infobip.url, **smtp_env(fake_smtp))
    run_cycle(ctx, now)
    run_cycle(ctx, now + timedelta(seconds=1))
    assert [r.status for r in rows(session, incident)] == ["exhausted", "sent"]
    assert len(fake_smtp.messages) == 1
    [line] = failover_lines(session, incident)
    assert line.startswith("SMS to +15•••••0101 failed (") and line.endswith("→ email to a••••@acme.test")


def test_no_delivered_receipt_in_time_pages_email_when_receipts_are_configured(session, make_ctx, fake_infobip,
                                                                             fake_smtp):
    user = sms_then_email(session, email_after=30)
    incident = make_incident(session)
    now = utcnow()
    page(session, incident, user, now=now)
    ctx = make_ctx(fake_infobip.url, INFOBIP_RECEIPT_TOKEN="receipt-token-123", DELIVERY_CONFIRM_SECONDS=120,
                   **smtp_env(fake_smtp))
    run_cycle(ctx, now)
    run_cycle(ctx, now + timedelta(seconds=119))
    assert fake_smtp.messages == []
    run_cycle(ctx, now + timedelta(seconds=122))
    assert len(fake_smtp.messages) == 1
    [line] = failover_lines(session, incident)
    assert "not confirmed delivered after 120s" in line


def test_without_receipts_an_unconfirmed_sms_is_not_failed_over(session, make_ctx, fake_infobip, fake_smtp):
    user = sms_then_email(session, email_after=30)
    incident = make_incident(session)
    now = utcnow()
    page(session, incident, user, now=now)
    ctx = make_ctx(fake_infobip.url, **smtp_env(fake_smtp))
    run_cycle(ctx, now)
    run_cycle(ctx, now + timedelta(seconds=300))
    assert fake_smtp.messages == [] and failover_lines(session, incident) == []


def test_acknowledged_incident_does_not_fail_over(session, make_ctx, fake_infobip, fake_smtp):
    user = sms_then_email(session)
    incident = make_incident(session)
    now = utcnow()
    page(session, incident, user, now=now)
    ctx = make_ctx(fake_infobip.url, **smtp_env(fake_smtp))
    run_cycle(ctx, now)
    sms = rows(session, incident)[0]
    acknowledge_incident(session, incident, actor=user, now=now + timedelta(seconds=5))
    apply_delivery_reports(session, {"results": [fake_infobip.delivery_report(sms.provider_message_id,
                                                                               "UNDELIVERABLE")]},
                           now=now + timedelta(seconds=6))
    session.commit()
    run_cycle(ctx, now + timedelta(seconds=7))
    assert fake_smtp.messages == []
    assert [r.status for r in rows(session, incident)] == ["undeliverable", "cancelled"]
