"""Infobip senders: SMS (`/sms/2/text/advanced`) and WhatsApp (text or an approved template).

Outcome mapping (the worker retries `retryable`, gives up on `permanent`):
- 2xx with a message id → accepted (a REJECTED status group in the body → permanent);
- timeouts, connection errors, 429 and 5xx → retryable;
- any other 4xx (bad key, bad request, wrong base URL) → permanent, with Infobip's reason.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests

from pagerpal_core.logs import log_fields
from pagerpal_worker.providers.base import OutboundMessage, SendResult
from pagerpal_worker.providers.errors import permanent, retryable, safe_text

log = logging.getLogger("pagerpal.providers.infobip")

SMS_PATH = "/sms/2/text/advanced"
WHATSAPP_TEXT_PATH = "/whatsapp/1/message/text"
WHATSAPP_TEMPLATE_PATH = "/whatsapp/1/message/template"
DEFAULT_TEMPLATE_LANGUAGE = "en"
MAX_PLACEHOLDER_CHARS = 1000   # WhatsApp refuses longer template parameters
USER_AGENT = "PagerPal"
MAX_RETRY_AFTER_SECONDS = 3600.0


def normalize_base_url(raw: str) -> str:
    """Infobip shows base URLs without a scheme (`xxxx.api.infobip.com`); default to https."""
    value = raw.strip().rstrip("/")
    if "://" not in value:
        value = "https://" + value
    return value


def infobip_number(destination: str) -> str | None:
    """An E.164 number as Infobip wants it (digits only), or None when it is not one."""
    value = destination.strip().replace(" ", "").replace("-", "")
    if value.startswith("+"):
        value = value[1:]
    if value.startswith("00"):
        value = value[2:]
    if not value.isdigit() or not 7 <= len(value) <= 15 or value.startswith("0"):
        return None
    return value


def parse_template_setting(raw: str) -> tuple[str, str]:
    """INFOBIP_WHATSAPP_TEMPLATE is `name` or `name:language` (language defaults to en)."""
    name, _, language = raw.strip().partition(":")
    return name.strip(), (language.strip() or DEFAULT_TEMPLATE_LANGUAGE)


def template_placeholders(message: OutboundMessage) -> list[str]:
    """The two body parameters of the page template: {{1}} the subject, {{2}} the details.

    WhatsApp refuses newlines, tabs and long runs of spaces in parameters, so the details
    (source, description, link) are joined on one line.
    """
    lines = [line.strip() for line in message.body.splitlines() if line.strip()]
    if lines and message.subject and message.subject in lines[0]:
        lines = lines[1:]
    details = " · ".join(" ".join(line.split()) for line in lines) or message.subject
    subject = " ".join(message.subject.split())
    return [subject[:MAX_PLACEHOLDER_CHARS], details[-MAX_PLACEHOLDER_CHARS:]]


def parse_retry_after(raw: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped at an hour.

    None when absent or unreadable. The cap keeps a provider's typo from silencing pages for days.
    """
    if not raw:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds <= 0:  # NaN or in the past
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


def _service_exception(response: requests.Response) -> str:
    """`MESSAGE_ID: text` from Infobip's error envelope, or a clipped raw body."""
    try:
        data = response.json()
        exc = data["requestError"]["serviceException"]
        parts = [str(exc.get("messageId") or "").strip(), str(exc.get("text") or "").strip()]
        detail = ": ".join(p for p in parts if p)
        violations = exc.get("validationErrors")
        if isinstance(violations, dict) and violations:
            detail += " (" + "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                                       for k, v in violations.items()) + ")"
        return detail or "no reason given"
    except (ValueError, KeyError, TypeError, AttributeError):
        text = " ".join((response.text or "").split())
        return text[:200] or "no reason given"


class InfobipSender:
    """What the SMS and WhatsApp senders share: auth, timeouts, outcome mapping."""

    channel = ""

    def __init__(self, *, base_url: str, api_key: str, sender: str, timeout: float = 10.0,
                 secrets: list[str] | tuple[str, ...] = ()):
        self.base_url = normalize_base_url(base_url)
        self.api_key = api_key
        self.sender = sender
        self.timeout = timeout
        self.secrets = tuple(dict.fromkeys([api_key, *secrets]))
        self._local = threading.local()   # a requests.Session per thread (sessions are not thread-safe)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _post(self, path: str, payload: dict, message: OutboundMessage) -> tuple[SendResult | None, dict | None]:
        """POST `payload`; (failure, None) or (None, parsed 2xx body)."""
        url = self.base_url + path
        headers = {"Authorization": f"App {self.api_key}", "Content-Type": "application/json",
                   "Accept": "application/json", "User-Agent": USER_AGENT}
        try:
            response = self._session().post(url, json=payload, headers=headers,
                                             timeout=(self.timeout, self.timeout))
        except requests.Timeout as exc:
            kind = "connecting to" if isinstance(exc, requests.ConnectTimeout) else "waiting for"
            return self._fail(message, retryable(f"timed out after {self.timeout:g}s {kind} Infobip",
                                                  self.secrets)), None
        except requests.ConnectionError as exc:
            return self._fail(message, retryable(f"could not reach Infobip: {_short(exc)}", self.secrets)), None
        except requests.RequestException as exc:
            return self._fail(message, permanent(f"could not call Infobip: {_short(exc)}", self.secrets)), None
        status = response.status_code
        if 200 <= status < 300:
            try:
                data = response.json()
            except ValueError:
                data = None
            return None, data if isinstance(data, dict) else {}
        reason = _service_exception(response)
        if status == 429:
            after = parse_retry_after(response.headers.get("Retry-After"))
            return self._fail(message, retryable(
                f"Infobip rate limit (429 {reason})" + (f", retry after {after:g}s" if after else ""),
                self.secrets, retry_after=after)), None
        if status >= 500:
            return self._fail(message, retryable(f"Infobip server error ({status} {reason})", self.secrets)), None
        if status in (401, 403):
            return self._fail(message, permanent(
                f"Infobip refused the credentials ({status} {reason}); check INFOBIP_API_KEY", self.secrets)), None
        if status == 404:
            return self._fail(message, permanent(
                f"Infobip endpoint not found ({status} {reason}); check INFOBIP_BASE_URL", self.secrets)), None
        if status == 408:
            return self._fail(message, retryable(f"Infobip request timeout ({status} {reason})", self.secrets)), None
        return self._fail(message, permanent(f"Infobip refused the message ({status} {reason})", self.secrets)), None

    def _accepted(self, message: OutboundMessage, entry: dict | None) -> SendResult:
        """The result for one message entry of a 2xx response."""
        entry = entry if isinstance(entry, dict) else {}
        status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
        group = str(status.get("groupName") or "").upper()
        name = str(status.get("name") or group or "") or None
        message_id = entry.get("messageId")
        message_id = str(message_id) if message_id not in (None, "") else None
        if group == "REJECTED":
            why = status.get("description") or name
            return self._fail(message, permanent(f"Infobip rejected the message: {name} ({why})", self.secrets))
        result = SendResult.accepted(message_id, (name or "accepted")[:64])
        log.info("infobip accepted a message", extra=log_fields(
            notification_id=message.notification_id, channel=self.channel,
            provider_message_id=message_id, provider_status=result.provider_status))
        return result

    def _fail(self, message: OutboundMessage, result: SendResult) -> SendResult:
        log.warning("infobip send failed", extra=log_fields(
            notification_id=message.notification_id, channel=self.channel, outcome=result.outcome,
            error=safe_text(result.error or "", self.secrets)))
        return result

    def _destination(self, message: OutboundMessage) -> tuple[str | None, SendResult | None]:
        number = infobip_number(message.destination)
        if number is None:
            return None, self._fail(message, SendResult.permanent(
                "invalid destination: not an E.164 phone number"))
        return number, None


class InfobipSmsSender(InfobipSender):
    """SMS through Infobip's `/sms/2/text/advanced`."""

    channel = "sms"

    @classmethod
    def from_settings(cls, settings) -> InfobipSmsSender:
        """The SMS sender the settings configure."""
        return cls(base_url=settings.infobip_base_url, api_key=settings.infobip_api_key,
                   sender=settings.infobip_sms_sender, timeout=settings.provider_timeout_seconds,
                   secrets=settings.secret_values())

    def send(self, message: OutboundMessage) -> SendResult:
        """Send one SMS; never raises for provider trouble."""
        number, failure = self._destination(message)
        if failure:
            return failure
        payload = {"messages": [{
            "from": self.sender,
            "destinations": [{"to": number}],
            "text": message.body,
            "callbackData": f"pagerpal-notification-{message.notification_id}",
        }]}
        failure, data = self._post(SMS_PATH, payload, message)
        if failure:
            return failure
        entries = data.get("messages") if isinstance(data.get("messages"), list) else []
        return self._accepted(message, entries[0] if entries else None)


class InfobipWhatsAppSender(InfobipSender):
    """WhatsApp through Infobip: a free-text message, or an approved template when configured.

    WhatsApp delivers free text only inside a 24-hour window opened by the recipient, so a
    page (business-initiated) needs a template: INFOBIP_WHATSAPP_TEMPLATE=`name[:language]`,
    with two body placeholders, {{1}} subject and {{2}} details.
    """

    channel = "whatsapp"

    def __init__(self, *, template: str = "", **kwargs):
        super().__init__(**kwargs)
        self.template_name, self.template_language = parse_template_setting(template) if template \
            else ("", DEFAULT_TEMPLATE_LANGUAGE)

    @classmethod
    def from_settings(cls, settings) -> InfobipWhatsAppSender:
        """The WhatsApp sender the settings configure."""
        return cls(base_url=settings.infobip_base_url, api_key=settings.infobip_api_key,
                   sender=settings.infobip_whatsapp_sender, template=settings.infobip_whatsapp_template,
                   timeout=settings.provider_timeout_seconds, secrets=settings.secret_values())

    def send(self, message: OutboundMessage) -> SendResult:
        """Send one WhatsApp message; never raises for provider trouble."""
        number, failure = self._destination(message)
        if failure:
            return failure
        callback = f"pagerpal-notification-{message.notification_id}"
        sender = infobip_number(self.sender) or self.sender
        if self.template_name:
            payload = {"messages": [{
                "from": sender, "to": number, "callbackData": callback,
                "content": {"templateName": self.template_name, "language": self.template_language,
                            "templateData": {"body": {"placeholders": template_placeholders(message)}}},
            }]}
            failure, data = self._post(WHATSAPP_TEMPLATE_PATH, payload, message)
            if failure:
                return failure
            entries = data.get("messages") if isinstance(data.get("messages"), list) else []
            return self._accepted(message, entries[0] if entries else None)
        payload = {"from": sender, "to": number, "callbackData": callback,
                   "content": {"text": message.body[:4096]}}
        failure, data = self._post(WHATSAPP_TEXT_PATH, payload, message)
        if failure:
            return failure
        return self._accepted(message, data)


def _short(exc: BaseException) -> str:
    """An exception's message on one line, without the noisy urllib3 object reprs."""
    text = " ".join(str(exc).split())
    for marker in ("Caused by ", "(Caused by "):
        if marker in text:
            text = text.split(marker, 1)[1].rstrip(")")
    return text[:300] or type(exc).__name__
