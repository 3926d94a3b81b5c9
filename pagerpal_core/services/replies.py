"""Reply commands by SMS and WhatsApp: "4821 ACK" answers a page.

Every SMS/WhatsApp page ends with `Reply <code> ACK / <code> RES`. The code is a 4-digit
number unique among the recipient's open pages (`assign_reply_code`), so from a known
number it names exactly one incident. Codes are released (and may be reused) once the
incident is resolved.

Infobip forwards replies to `POST /api/v1/notifications/infobip/inbound`. `parse_inbound`
turns the body (inbound SMS in MO_JSON_2, or inbound WhatsApp) into `InboundReply` values
and refuses a malformed body as a whole (400, nothing written); `handle_replies` applies
them. For each reply, in order:

1. the sender (`from`, normalised to E.164) must be an enabled SMS/WhatsApp contact method
   of an active user — otherwise the reply is ignored: no answer, nothing written;
2. its provider message id is recorded (unique): a replayed forward stops here;
3. the command runs as that user through the incident services (`act_as`), the timeline
   saying "via SMS reply";
4. an answer ("Acknowledged #42 Disk full on db-1", or why not) is queued in the outbox to
   the sender on the same channel — at most MAX_ANSWERS per number per 15 minutes,
   so two auto-responders answering each other cannot spend the SMS budget.

Commands (case-insensitive, extra spaces ignored): `<code> ACK`, `<code> RES`,
`<code> ESC`, `<code> SNOOZE 30m|1h|4h`; a bare `ACK` (or RES, ESC, SNOOZE) acts when the
person has exactly one open page.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagerpal_core.errors import Conflict, DomainError, Invalid
from pagerpal_core.models import ContactMethod, InboundMessage, Incident, Notification, ReplyCode, User
from pagerpal_core.models.incidents import OPEN_STATUSES
from pagerpal_core.security import clip, mask_destination
from pagerpal_core.services import action_links, hit_counters
from pagerpal_core.timeutil import parse_iso
from pagerpal_core.wakeup import notify_new_work

log = logging.getLogger(__name__)

PHONE_CHANNELS = ("sms", "whatsapp")
MAX_RESULTS = 100
MAX_MESSAGE_ID = 200
MAX_TEXT = 500
# Answers per number per 15 minutes; past it, commands still act but get no answer until
# the block ends.
MAX_ANSWERS = 10
ANSWER_WINDOW_SECONDS = ANSWER_BLOCK_SECONDS = 15 * 60
ANSWER_LIMIT = 300          # an answer stays within two SMS segments
CODE_DIGITS = 4
VERBS = {"ack": "ack", "acknowledge": "ack", "res": "resolve", "resolve": "resolve", "esc": "escalate",
         "escalate": "escalate", "snooze": "snooze"}
COMMAND_RE = re.compile(r"^(?:(?P<code>\d{3,6})\s*)?(?P<verb>[a-z]+)(?:\s+(?P<arg>\S+))?$")
DURATION_RE = re.compile(r"^(?P<n>\d{1,4})(?P<unit>m|min|h)$")
HELP = "Reply <code> ACK, <code> RES, <code> ESC or <code> SNOOZE 30m|1h|4h"


class BadInbound(DomainError):
    """The forwarded body is not an inbound message list: 400, nothing written."""

    code, status = "bad_request", 400


# --- reply codes ----------------------------------------------------------------------------

def release_closed_codes(session: Session, user_id: int, *, now: datetime) -> int:
    """Release `user_id`'s codes whose incident is resolved (they may be handed out again)."""
    resolved = select(Incident.id).where(Incident.status == "resolved")
    result = session.execute(
        update(ReplyCode).where(ReplyCode.user_id == user_id, ReplyCode.released_at.is_(None),
                                ReplyCode.incident_id.in_(resolved))
        .values(released_at=now).execution_options(synchronize_session=False))
    return result.rowcount or 0


def _active_code(session: Session, user_id: int, incident_id: int) -> str | None:
    return session.scalar(select(ReplyCode.code).where(ReplyCode.user_id == user_id,
                                                       ReplyCode.incident_id == incident_id,
                                                       ReplyCode.released_at.is_(None)))


def assign_reply_code(session: Session, incident: Incident, user: User, *, now: datetime) -> str:
    """The code `user` replies with for `incident`: the one it already has, else a new one.

    Both "one code per (person, incident)" and "one incident per (person, code)" are unique
    indexes, so concurrent pagers cannot hand out a code twice; a collision retries.
    """
    existing = _active_code(session, user.id, incident.id)
    if existing is not None:
        return existing
    release_closed_codes(session, user.id, now=now)
    for attempt in range(30):
        digits = CODE_DIGITS if attempt < 20 else CODE_DIGITS + 2
        taken = set(session.scalars(select(ReplyCode.code).where(ReplyCode.user_id == user.id,
                                                                 ReplyCode.released_at.is_(None))))
        code = str(10 ** (digits - 1) + secrets.randbelow(9 * 10 ** (digits - 1)))
        if code in taken:
            continue
        try:
            with session.begin_nested():
                session.add(ReplyCode(user_id=user.id, incident_id=incident.id, code=code, created_at=now))
                session.flush()
        except IntegrityError:
            # Another writer took this code, or gave this incident a code first.
            existing = _active_code(session, user.id, incident.id)
            if existing is not None:
                return existing
            continue
        return code
    raise Conflict(f"no free reply code for user {user.id}")


# --- parsing the forwarded body (pure) --------------------------------------------------------

@dataclass(frozen=True)
class InboundReply:
    """One inbound message: who sent what, on which channel."""

    message_id: str
    channel: str            # sms | whatsapp
    sender: str | None      # E.164, or None when `from` is not a phone number
    text: str | None        # None: not a text message (a WhatsApp image, ...)
    received_at: datetime | None = None


def normalize_number(raw) -> str | None:
    """An E.164 number from Infobip's `from` ("41793026727", "+41 79…", "0041…"), or None."""
    if not isinstance(raw, str):
        return None
    value = re.sub(r"[\s().-]", "", raw)
    if value.startswith("00"):
        value = value[2:]
    value = value.removeprefix("+")
    if not value.isdigit() or not 7 <= len(value) <= 15 or value.startswith("0"):
        return None
    return "+" + value


def _received_at(raw) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    # Infobip writes "+0000"; fromisoformat wants "+00:00".
    fixed = raw[:-2] + ":" + raw[-2:] if len(raw) > 5 and raw[-5] in "+-" and raw[-3] != ":" else raw
    try:
        return parse_iso(fixed)
    except (ValueError, TypeError):
        return None


def parse_inbound(payload) -> list[InboundReply]:
    """The replies in an Infobip inbound body (MO_JSON_2 SMS or WhatsApp); BadInbound if malformed.

    The whole body is refused when any entry is malformed, so nothing is half-applied.
    Entries that are well-formed but carry no text (a WhatsApp image) come back with
    `text` None and are skipped later.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        raise BadInbound('expected {"results": [...]} as Infobip forwards inbound messages')
    results = payload["results"]
    if len(results) > MAX_RESULTS:
        raise BadInbound(f"at most {MAX_RESULTS} results per call")
    replies, problems = [], {}
    for i, entry in enumerate(results):
        where = f"results[{i}]"
        if not isinstance(entry, dict):
            problems[where] = "must be an object"
            continue
        message_id = entry.get("messageId")
        if not isinstance(message_id, str) or not message_id.strip() or len(message_id) > MAX_MESSAGE_ID:
            problems[f"{where}.messageId"] = f"must be a non-empty string of at most {MAX_MESSAGE_ID} characters"
            continue
        if not isinstance(entry.get("from"), str) or not entry["from"].strip():
            problems[f"{where}.from"] = "must be the sender's number"
            continue
        message = entry.get("message")
        whatsapp = str(entry.get("integrationType") or "").upper() == "WHATSAPP" or isinstance(message, dict)
        if whatsapp:
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                problems[f"{where}.message"] = 'must be an object with a "type"'
                continue
            text = message.get("text") if message["type"].upper() == "TEXT" else None
            if message["type"].upper() == "TEXT" and not isinstance(text, str):
                problems[f"{where}.message.text"] = "must be a string"
                continue
        else:
            text = entry.get("text")
            if not isinstance(text, str):
                problems[f"{where}.text"] = "must be a string"
                continue
        replies.append(InboundReply(message_id=message_id.strip(), channel="whatsapp" if whatsapp else "sms",
                                    sender=normalize_number(entry["from"]), text=text,
                                    received_at=_received_at(entry.get("receivedAt"))))
    if problems:
        raise BadInbound("malformed inbound message", fields=problems)
    return replies


@dataclass(frozen=True)
class Command:
    """A parsed reply: `verb` is ack/resolve/escalate/snooze, or None when unrecognised."""

    verb: str | None
    code: str | None = None
    minutes: int | None = None
    problem: str | None = None


def parse_command(text: str) -> Command:
    """"4821 ack" → Command("ack", "4821"); "snooze 1h" → Command("snooze", None, 60)."""
    words = " ".join(str(text or "").split()).lower()
    match = COMMAND_RE.match(words)
    if not match or match["verb"] not in VERBS:
        return Command(None, match["code"] if match else None, problem=f"Unknown command. {HELP}")
    verb, code, arg = VERBS[match["verb"]], match["code"], match["arg"]
    if verb != "snooze":
        if arg is not None:
            return Command(None, code, problem=f"Unknown command. {HELP}")
        return Command(verb, code)
    duration = DURATION_RE.match(arg or "")
    if not duration:
        return Command(None, code, problem="Say how long: SNOOZE 30m, 1h or 4h")
    minutes = int(duration["n"]) * (60 if duration["unit"] == "h" else 1)
    if not 1 <= minutes <= 24 * 60:
        return Command(None, code, problem="Snooze for 1 minute up to 24h")
    return Command(verb, code, minutes)


# --- applying replies --------------------------------------------------------------------------

@dataclass
class ReplySummary:
    """What one inbound call did."""

    received: int = 0
    applied: int = 0        # commands that changed an incident
    answered: int = 0       # answers queued
    unknown_sender: int = 0
    replayed: int = 0
    ignored: int = 0        # known sender, no text (media) or nothing to do
    outcomes: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """The counts as the inbound endpoint answers them."""
        return {"received": self.received, "applied": self.applied, "answered": self.answered,
                "unknown_sender": self.unknown_sender, "replayed": self.replayed, "ignored": self.ignored}


def users_for_number(session: Session, number: str) -> list[User]:
    """Active users with an enabled SMS or WhatsApp contact method at `number`."""
    return list(session.scalars(
        select(User).join(ContactMethod, ContactMethod.user_id == User.id)
        .where(ContactMethod.destination == number, ContactMethod.channel.in_(PHONE_CHANNELS),
               ContactMethod.enabled.is_(True), User.active.is_(True))
        .distinct().order_by(User.id)))


def open_codes(session: Session, users: list[User]) -> list[tuple[ReplyCode, Incident]]:
    """The active codes of `users` whose incidents are still open, oldest first."""
    rows = session.execute(
        select(ReplyCode, Incident).join(Incident, Incident.id == ReplyCode.incident_id)
        .where(ReplyCode.user_id.in_([u.id for u in users]), ReplyCode.released_at.is_(None),
               Incident.status.in_(OPEN_STATUSES))
        .order_by(ReplyCode.id))
    return [(code, incident) for code, incident in rows.all()]


def _record(session: Session, reply: InboundReply, user: User) -> InboundMessage | None:
    """Record the message id once; None when it was already recorded (a replay)."""
    row = InboundMessage(provider_message_id=reply.message_id, channel=reply.channel, sender=reply.sender,
                         text=clip(reply.text or "", MAX_TEXT), user_id=user.id, received_at=reply.received_at)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    return row


def _short(incident: Incident) -> str:
    return f"#{incident.id} {clip(' '.join(incident.title.split()), 80)}"


def run_command(session: Session, users: list[User], command: Command, *, channel: str, now: datetime,
                base_url: str) -> tuple[str, str, Incident | None]:
    """Run `command` for the people behind one number; (outcome, answer text, incident)."""
    if command.verb is None:
        return "invalid_command", command.problem or HELP, None
    candidates = open_codes(session, users)
    if command.code is not None:
        matches = [(c, i) for c, i in candidates if c.code == command.code]
        if not matches:
            resolved = session.execute(
                select(Incident).join(ReplyCode, ReplyCode.incident_id == Incident.id)
                .where(ReplyCode.user_id.in_([u.id for u in users]), ReplyCode.code == command.code,
                       ReplyCode.released_at.is_(None))).scalars().first()
            if resolved is not None:
                return "already", f"{_short(resolved)} is already resolved", resolved
            return "unknown_code", f"No open page {command.code} for this number", None
    else:
        matches = candidates
        if not matches:
            return "no_open_page", "No open page for this number", None
        if len(matches) > 1:
            listing = ", ".join(f"{c.code} {_short(i)}" for c, i in matches[:5])
            return "ambiguous", f"{len(matches)} open pages; reply with the code, e.g. " \
                                f"{matches[0][0].code} ACK. {listing}", None
    code, incident = matches[0]
    user = next(u for u in users if u.id == code.user_id)
    try:
        outcome = action_links.act_as(session, incident, user, command.verb,
                                      via=action_links.via_label(channel, "reply"), now=now, base_url=base_url,
                                      minutes=command.minutes)
    except Conflict as exc:
        return "refused", f"{_short(incident)}: {exc.message}", incident
    except Invalid as exc:
        return "refused", f"{_short(incident)}: {exc.message}", incident
    return ("applied" if outcome.changed else "already"), outcome.message, incident


def queue_answer(session: Session, reply: InboundReply, user: User, text: str, *, now: datetime) -> bool:
    """Queue `text` to the reply's sender on its channel, unless the number is over its answer budget."""
    if hit_counters.count_hit(session, f"reply-answers:{reply.sender}", now=now, limit=MAX_ANSWERS,
                              window_seconds=ANSWER_WINDOW_SECONDS, block_seconds=ANSWER_BLOCK_SECONDS):
        log.warning("reply answer suppressed: too many answers to this number",
                    extra={"fields": {"to": mask_destination(reply.sender)}})
        return False
    # No incident_id: the dispatcher holds back pages of resolved incidents, and "Resolved #42"
    # must still go out. The dedup key ties the answer to the message it answers.
    session.add(Notification(
        incident_id=None, user_id=user.id, channel=reply.channel, destination=reply.sender,
        dedup_key=f"reply:{reply.message_id}"[:200], subject="PagerPal", body=clip(text, ANSWER_LIMIT),
        status="pending", attempts=0, next_attempt_at=now, created_at=now, updated_at=now))
    session.flush()
    return True


def handle_replies(session: Session, replies: list[InboundReply], *, now: datetime, base_url: str) -> ReplySummary:
    """Apply parsed replies (see the module docstring); the caller commits once."""
    summary = ReplySummary(received=len(replies))
    for reply in replies:
        users = users_for_number(session, reply.sender) if reply.sender else []
        if not users:
            summary.unknown_sender += 1
            summary.outcomes.append("unknown_sender")
            continue
        recorded = _record(session, reply, users[0])
        if recorded is None:
            summary.replayed += 1
            summary.outcomes.append("replayed")
            continue
        if reply.text is None:
            recorded.outcome = "ignored"
            summary.ignored += 1
            summary.outcomes.append("ignored")
            continue
        outcome, answer, incident = run_command(session, users, parse_command(reply.text), channel=reply.channel,
                                                now=now, base_url=base_url)
        recorded.outcome, recorded.incident_id = outcome, incident.id if incident is not None else None
        summary.applied += outcome == "applied"
        summary.outcomes.append(outcome)
        if queue_answer(session, reply, users[0], answer, now=now):
            summary.answered += 1
        session.flush()
    if summary.answered:
        notify_new_work(session)
    return summary
