"""Infobip delivery reports: move sent notifications to delivered or undeliverable.

Infobip posts `{"results": [{"messageId", "status": {"groupName", "name", "description"},
"error": {"name", "description"}, "doneAt", ...}]}`. Each entry is matched by
`provider_message_id`. Only a `sent` notification changes, with one conditional UPDATE, so a
replayed or concurrent report finds nothing to change and writes no second timeline event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pagerpal_core.errors import Invalid
from pagerpal_core.models import Incident, Notification
from pagerpal_core.security import clip, mask_destination
from pagerpal_core.services.timeline import record_event
from pagerpal_core.timeutil import parse_iso

MAX_RESULTS = 1000
# Infobip status groups: DELIVERED is final success; these are final failures.
FAILED_GROUPS = ("UNDELIVERABLE", "EXPIRED", "REJECTED")
DELIVERED_GROUP = "DELIVERED"


@dataclass
class ReceiptSummary:
    """What one delivery-report call did."""

    received: int = 0
    delivered: int = 0
    undeliverable: int = 0
    unchanged: int = 0      # known id, but nothing to change (replay, pending report, not `sent`)
    unknown: int = 0        # no notification has this message id
    invalid: int = 0        # entries without a message id or status
    notification_ids: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """The counts as the receipt endpoint answers them."""
        return {"received": self.received, "delivered": self.delivered, "undeliverable": self.undeliverable,
                "unchanged": self.unchanged, "unknown": self.unknown, "invalid": self.invalid}


def _text(value) -> str:
    return " ".join(str(value).split()) if value not in (None, "") else ""


def describe_failure(entry: dict) -> str:
    """The provider's reason, e.g. `UNDELIVERABLE_NOT_DELIVERED (Message sent not delivered);
    error EC_ABSENT_SUBSCRIBER (Absent Subscriber)`."""
    status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
    error = entry.get("error") if isinstance(entry.get("error"), dict) else {}
    parts = []
    name, desc = _text(status.get("name") or status.get("groupName")), _text(status.get("description"))
    if name:
        parts.append(name + (f" ({desc})" if desc else ""))
    ename, edesc = _text(error.get("name")), _text(error.get("description"))
    if ename and ename != "NO_ERROR":
        parts.append("error " + ename + (f" ({edesc})" if edesc else ""))
    return clip("; ".join(parts) or "undeliverable", 1000)


def _done_at(entry: dict, now: datetime) -> datetime:
    raw = entry.get("doneAt")
    if isinstance(raw, str) and raw:
        # Infobip writes +0000; parse_iso wants +00:00.
        fixed = raw[:-2] + ":" + raw[-2:] if len(raw) > 5 and raw[-5] in "+-" and raw[-3] != ":" else raw
        try:
            parsed = parse_iso(fixed)
            if parsed is not None:
                return parsed
        except (ValueError, TypeError):
            pass
    return now


def parse_reports(payload) -> list:
    """The `results` list of a delivery-report body; Invalid naming what is wrong otherwise."""
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object with a results list", fields={"results": "required"})
    results = payload.get("results")
    if not isinstance(results, list):
        raise Invalid("the body must have a results list", fields={"results": "must be a list"})
    if len(results) > MAX_RESULTS:
        raise Invalid(f"at most {MAX_RESULTS} results per call", fields={"results": "too many entries"})
    return results


def apply_delivery_reports(session: Session, payload, *, now: datetime) -> ReceiptSummary:
    """Apply an Infobip delivery-report body; flushes, the caller commits.

    DELIVERED → `delivered`; UNDELIVERABLE / EXPIRED / REJECTED → `undeliverable` with the
    provider's reason in last_error; PENDING and other groups record the provider status only.
    Unknown message ids are counted and ignored. Each change is a timeline event.
    """
    summary = ReceiptSummary()
    for entry in parse_reports(payload):
        summary.received += 1
        message_id = entry.get("messageId") if isinstance(entry, dict) else None
        status = entry.get("status") if isinstance(entry, dict) else None
        if not isinstance(message_id, (str, int)) or message_id == "" or not isinstance(status, dict):
            summary.invalid += 1
            continue
        message_id = str(message_id)[:128]
        group = _text(status.get("groupName")).upper()
        provider_status = clip(_text(status.get("name") or group), 64) or None
        ids = list(session.scalars(select(Notification.id).where(Notification.provider_message_id == message_id)))
        if not ids:
            summary.unknown += 1
            continue
        for notification_id in ids:
            changed = _apply_one(session, notification_id, group, provider_status, entry, now=now)
            if changed == "delivered":
                summary.delivered += 1
                summary.notification_ids.append(notification_id)
            elif changed == "undeliverable":
                summary.undeliverable += 1
                summary.notification_ids.append(notification_id)
            else:
                summary.unchanged += 1
    session.flush()
    return summary


def _apply_one(session: Session, notification_id: int, group: str, provider_status: str | None,
               entry: dict, *, now: datetime) -> str | None:
    """Move one `sent` row; returns its new status, or None when nothing changed."""
    if group == DELIVERED_GROUP:
        new_status, values = "delivered", {"delivered_at": _done_at(entry, now)}
    elif group in FAILED_GROUPS:
        new_status, values = "undeliverable", {"last_error": describe_failure(entry)}
    else:
        # An interim report (PENDING): note the provider's status on a row still `sent`.
        session.execute(update(Notification)
                        .where(Notification.id == notification_id, Notification.status == "sent")
                        .values(provider_status=provider_status, updated_at=now)
                        .execution_options(synchronize_session=False))
        return None
    # Conditional on `sent`: a replay (or a second report racing this one) matches no row.
    result = session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == "sent")
        .values(status=new_status, provider_status=provider_status, updated_at=now, **values)
        .execution_options(synchronize_session=False))
    if not result.rowcount:
        return None
    notification = session.get(Notification, notification_id)
    session.refresh(notification)
    incident = session.get(Incident, notification.incident_id) if notification.incident_id else None
    if incident is not None:
        label = f"{notification.channel} to {mask_destination(notification.destination)}"
        if new_status == "delivered":
            record_event(session, incident, "notification_delivered", f"Page by {label} delivered",
                         detail={"notification_id": notification.id, "provider_message_id":
                                 notification.provider_message_id, "provider_status": provider_status},
                         now=now)
        else:
            record_event(session, incident, "notification_undeliverable",
                         f"Page by {label} could not be delivered: {notification.last_error}",
                         detail={"notification_id": notification.id, "provider_message_id":
                                 notification.provider_message_id, "provider_status": provider_status,
                                 "error": notification.last_error}, now=now)
    return new_status
