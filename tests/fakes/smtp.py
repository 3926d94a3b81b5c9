"""A real local SMTP server (aiosmtpd) that records the messages it accepts, for tests.

    with FakeSMTP() as smtp:                       # plain SMTP on 127.0.0.1:<free port>
        ... send to smtp.host, smtp.port ...
        smtp.wait_for_messages(1)[0].message["Subject"]

    with FakeSMTP(security="starttls", users={"pager": "pw"}) as smtp:   # STARTTLS + AUTH
        ctx = smtp.client_ssl_context()           # trusts the server's self-signed certificate

security: "none" (plain), "starttls" (plain, STARTTLS offered and required before AUTH) or
"tls" (implicit TLS from the first byte). A self-signed certificate for 127.0.0.1/localhost
is made with the openssl command line in a temporary directory.

Trouble on demand: `reject_rcpt("550 5.1.1 No such user", count=1)`,
`reject_data("451 4.3.0 Try again later")`, `hang_next(seconds)` (delays the DATA reply).

As a process: `python -m tests.fakes.smtp --port 0 --record FILE` prints `LISTENING <port>`
and appends one JSON line per accepted message (mail_from, rcpt_tos, subject, message_id, raw).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import logging
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# aiosmtpd warns when AUTH is allowed without STARTTLS; that is deliberate here (see FakeSMTP).
logging.getLogger("mail.log").addFilter(
    lambda record: "auth_require_tls == False" not in record.getMessage())


@dataclass
class ReceivedMessage:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list
    raw: bytes
    message: email.message.EmailMessage
    login: str | None       # the AUTH user, when the client authenticated
    tls: bool               # whether the session was encrypted

    def text_part(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    def html_part(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


def make_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """(cert, key) for CN=localhost with IP 127.0.0.1 in subjectAltName."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    return cert, key


class _Handler:
    def __init__(self, fake: FakeSMTP):
        self.fake = fake

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.fake._take("rcpt")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        hang = self.fake._take("hang")
        if hang:
            await asyncio.sleep(hang)
        reply = self.fake._take("data")
        if reply:
            return reply
        raw = envelope.original_content or envelope.content
        login = session.auth_data if isinstance(session.auth_data, str) else None
        tls = server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
        self.fake._record(ReceivedMessage(
            mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos), raw=raw,
            message=email.message_from_bytes(raw, policy=email.policy.default),
            login=login, tls=tls))
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's Controller, but able to listen on port 0 (reads back the real port)."""

    def factory(self):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            return super().factory()

    def _trigger_server(self):
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        return super()._trigger_server()


class FakeSMTP:
    """The fake SMTP server; a context manager (a thread running aiosmtpd)."""

    def __init__(self, *, security: str = "none", users: dict[str, str] | None = None, port: int = 0,
                 record_file: str | None = None):
        if security not in ("none", "starttls", "tls"):
            raise ValueError("security must be none, starttls or tls")
        self.security = security
        self.users = dict(users or {})
        self.host = "127.0.0.1"
        self.messages: list[ReceivedMessage] = []
        self.auth_failures = 0
        self._queue: dict[str, list] = {"rcpt": [], "data": [], "hang": []}
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._record_file = record_file
        self._tmp = Path(tempfile.mkdtemp(prefix="fake-smtp-"))
        self.cafile: Path | None = None
        server_ctx = None
        if security != "none":
            self.cafile, keyfile = make_self_signed_cert(self._tmp)
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ctx.load_cert_chain(self.cafile, keyfile)
        kwargs = dict(hostname=self.host, port=port, ready_timeout=10.0)
        # With implicit TLS aiosmtpd does not know the session is encrypted, so it must not
        # insist on STARTTLS before AUTH; plain mode allows AUTH in clear on purpose (tests only).
        smtp_kwargs = dict(authenticator=self._authenticate, auth_required=bool(self.users),
                           auth_require_tls=security == "starttls")
        if security == "starttls":
            smtp_kwargs.update(tls_context=server_ctx, require_starttls=True)
        elif security == "tls":
            kwargs["ssl_context"] = server_ctx
        self._controller = _Controller(_Handler(self), **kwargs, **smtp_kwargs)

    @property
    def port(self) -> int:
        return self._controller.port

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (and checks the hostname)."""
        if self.cafile is None:
            raise RuntimeError("this server has no TLS")
        return ssl.create_default_context(cafile=str(self.cafile))

    def start(self) -> FakeSMTP:
        self._controller.start()
        return self

    def stop(self) -> None:
        try:
            self._controller.stop()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> FakeSMTP:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- trouble on demand -------------------------------------------------------------
    def reject_rcpt(self, reply: str = "550 5.1.1 Mailbox unavailable", count: int = 1) -> None:
        with self._lock:
            self._queue["rcpt"] += [reply] * count

    def reject_data(self, reply: str = "451 4.3.0 Temporary failure, try again", count: int = 1) -> None:
        with self._lock:
            self._queue["data"] += [reply] * count

    def hang_next(self, seconds: float, count: int = 1) -> None:
        with self._lock:
            self._queue["hang"] += [seconds] * count

    def _take(self, kind: str):
        with self._lock:
            return self._queue[kind].pop(0) if self._queue[kind] else None

    # --- recording ---------------------------------------------------------------------
    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if user in self.users and self.users[user] == password:
                return AuthResult(success=True, auth_data=user)
        with self._lock:
            self.auth_failures += 1
        return AuthResult(success=False, handled=False)

    def _record(self, received: ReceivedMessage) -> None:
        with self._arrived:
            self.messages.append(received)
            self._arrived.notify_all()
            if self._record_file:
                with open(self._record_file, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({
                        "mail_from": received.mail_from, "rcpt_tos": received.rcpt_tos,
                        "subject": str(received.message["Subject"]),
                        "message_id": str(received.message["Message-ID"]),
                        "login": received.login, "tls": received.tls,
                        "raw": received.raw.decode("utf-8", "replace")}) + "\n")

    def wait_for_messages(self, n: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until at least `n` messages arrived (or `timeout`); returns a copy."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.wait(left)
            return list(self.messages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the fake SMTP server as a process.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", help="append one JSON line per accepted message to this file")
    args = parser.parse_args(argv)
    stop = threading.Event()
    import signal
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with FakeSMTP(port=args.port, record_file=args.record) as fake:
        print(f"LISTENING {fake.port}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
