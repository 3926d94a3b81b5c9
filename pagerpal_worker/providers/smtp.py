"""Email through SMTP (smtplib): STARTTLS, implicit TLS or plain, by SMTP_SECURITY.

Every message is multipart/alternative: the page's text and an HTML part made from that
same text (escaped, links clickable), so both carry the same words and links, action links
included. Its Message-ID is derived from the notification id, so a retried send is the same
message to the recipient's mail client.
Outcome mapping: timeouts, connection trouble and 4xx SMTP replies → retryable; 5xx
replies, refused logins and TLS failures → permanent, saying why.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from pagerpal_core.logs import log_fields
from pagerpal_worker.providers.base import OutboundMessage, SendResult
from pagerpal_worker.providers.errors import permanent, retryable, safe_text

log = logging.getLogger("pagerpal.providers.smtp")

EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
URL_RE = re.compile(r"https?://[^\s<>\"']+")


def message_id_for(notification_id: int, *, from_address: str, instance: str = "") -> str:
    """The Message-ID of notification `notification_id`: the same on every attempt.

    `instance` (PAGERPAL_BASE_URL) keeps two PagerPal installations sending from one
    domain from minting the same id.
    """
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "pagerpal.invalid"
    tag = hashlib.sha256(instance.encode("utf-8")).hexdigest()[:10]
    return f"<pagerpal.notification.{notification_id}.{tag}@{domain}>"


def thread_id_for(incident_id: int, *, from_address: str, instance: str = "") -> str:
    """A per-incident id for References:, so one incident's pages thread together."""
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "pagerpal.invalid"
    tag = hashlib.sha256(instance.encode("utf-8")).hexdigest()[:10]
    return f"<pagerpal.incident.{incident_id}.{tag}@{domain}>"


def html_from_text(text: str) -> str:
    """A plain-text page as simple HTML: escaped, paragraphs kept, links clickable."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    out = []
    for para in paragraphs:
        escaped = html.escape(para)
        escaped = URL_RE.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        out.append("<p>" + escaped.replace("\n", "<br>\n") + "</p>")
    return "<!DOCTYPE html>\n<html><body>\n" + "\n".join(out) + "\n</body></html>\n"


def _code_text(code: int, text) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(str(text).split())}".strip()


class SmtpSender:
    """Sends one email per call over a fresh SMTP connection (pages are rare; keep it simple)."""

    channel = "email"

    def __init__(self, *, host: str, port: int, from_address: str, user: str = "", password: str = "",
                 security: str = "starttls", timeout: float = 10.0, instance: str = "",
                 ssl_context: ssl.SSLContext | None = None, secrets: list[str] | tuple[str, ...] = ()):
        if security not in ("starttls", "tls", "none"):
            raise ValueError("security must be starttls, tls or none")
        self.host = host
        self.port = port
        self.from_address = from_address
        self.user = user
        self.password = password
        self.security = security
        self.timeout = timeout
        self.instance = instance
        # Default: the system trust store with hostname checks (SSL_CERT_FILE is honoured).
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.secrets = tuple(dict.fromkeys([s for s in (password, *secrets) if s]))

    @classmethod
    def from_settings(cls, settings) -> SmtpSender:
        """The email sender the settings configure."""
        return cls(host=settings.smtp_host, port=settings.smtp_port, from_address=settings.smtp_from,
                   user=settings.smtp_user, password=settings.smtp_password, security=settings.smtp_security,
                   timeout=settings.provider_timeout_seconds, instance=settings.base_url,
                   secrets=settings.secret_values())

    def build_message(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message for `message`: text + HTML alternatives, stable Message-ID."""
        email = EmailMessage()
        email["Subject"] = " ".join(message.subject.split())
        email["From"] = self.from_address
        email["To"] = message.destination.strip()
        email["Date"] = formatdate(localtime=False, usegmt=True)
        email["Message-ID"] = message_id_for(message.notification_id, from_address=self.from_address,
                                             instance=self.instance)
        if message.incident_id is not None:
            email["References"] = thread_id_for(message.incident_id, from_address=self.from_address,
                                                instance=self.instance)
        # Tell auto-responders (vacation replies) not to answer a page.
        email["Auto-Submitted"] = "auto-generated"
        email["X-Auto-Response-Suppress"] = "All"
        email["X-PagerPal-Notification"] = str(message.notification_id)
        email.set_content(message.body)
        email.add_alternative(html_from_text(message.body), subtype="html")
        return email

    def send(self, message: OutboundMessage) -> SendResult:
        """Send one email; never raises for provider trouble."""
        to = message.destination.strip()
        if not EMAIL_RE.match(to):
            return self._fail(message, SendResult.permanent("invalid destination: not an email address"))
        email = self.build_message(message)
        try:
            self._deliver(email, to)
        except Exception as exc:  # every failure becomes a SendResult; nothing escapes the worker step
            return self._fail(message, self._classify(exc))
        log.info("smtp accepted a message", extra=log_fields(
            notification_id=message.notification_id, channel=self.channel))
        return SendResult.accepted(email["Message-ID"], "250 accepted")

    def _deliver(self, email: EmailMessage, to: str) -> None:
        if self.security == "tls":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self.ssl_context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            client.ehlo()
            if self.security == "starttls":
                if not client.has_extn("starttls"):
                    raise _NoStartTLS()
                client.starttls(context=self.ssl_context)
                client.ehlo()
            if self.user:
                client.login(self.user, self.password)
            client.send_message(email, from_addr=parseaddr(self.from_address)[1] or self.from_address,
                                to_addrs=[to])
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def _classify(self, exc: Exception) -> SendResult:
        """Map an smtplib/socket/ssl exception to retryable or permanent, saying why."""
        where = f"SMTP server {self.host}:{self.port}"
        s = self.secrets
        if isinstance(exc, _NoStartTLS):
            return permanent(f"{where} does not offer STARTTLS; set SMTP_SECURITY=tls or none", s)
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return permanent(f"{where} refused the login ({_code_text(exc.smtp_code, exc.smtp_error)}); "
                             "check SMTP_USER and SMTP_PASSWORD", s)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return permanent(f"{where} does not support AUTH; unset SMTP_USER or use TLS", s)
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            code, text = next(iter(exc.recipients.values()), (0, b""))
            why = f"{where} refused the recipient ({_code_text(code, text)})"
            return retryable(why, s) if 400 <= code < 500 else permanent(why, s)
        if isinstance(exc, smtplib.SMTPSenderRefused):
            why = f"{where} refused the sender SMTP_FROM ({_code_text(exc.smtp_code, exc.smtp_error)})"
            return retryable(why, s) if 400 <= exc.smtp_code < 500 else permanent(why, s)
        if isinstance(exc, smtplib.SMTPResponseException):
            why = f"{where} answered {_code_text(exc.smtp_code, exc.smtp_error)}"
            return permanent(why, s) if 500 <= exc.smtp_code < 600 else retryable(why, s)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return retryable(f"{where} closed the connection: {exc}", s)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return permanent(f"TLS certificate of {where} not trusted ({exc.verify_message}); "
                             "fix the certificate or the trust store", s)
        if isinstance(exc, ssl.SSLError):
            return permanent(f"TLS with {where} failed ({exc.reason or exc}); check SMTP_SECURITY and "
                             "SMTP_PORT (tls is usually 465, starttls 587)", s)
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return retryable(f"timed out after {self.timeout:g}s talking to {where}", s)
        if isinstance(exc, ConnectionRefusedError):
            return retryable(f"{where} refused the connection", s)
        if isinstance(exc, socket.gaierror):
            return retryable(f"could not resolve SMTP_HOST {self.host!r}: {exc.strerror or exc}", s)
        if isinstance(exc, (OSError, smtplib.SMTPException)):
            return retryable(f"could not talk to {where}: {exc}", s)
        return permanent(f"unexpected error sending email: {type(exc).__name__}: {exc}", s)

    def _fail(self, message: OutboundMessage, result: SendResult) -> SendResult:
        log.warning("smtp send failed", extra=log_fields(
            notification_id=message.notification_id, channel=self.channel, outcome=result.outcome,
            error=safe_text(result.error or "", self.secrets)))
        return result


class _NoStartTLS(Exception):
    """The server did not offer STARTTLS although SMTP_SECURITY=starttls."""
