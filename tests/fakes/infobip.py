"""A local HTTP server that speaks Infobip's SMS and WhatsApp APIs, for tests.

It listens on 127.0.0.1 (port 0 by default, so parallel tests never collide), records every
request (method, path, headers, parsed JSON body) and answers like Infobip does:

- ``POST /sms/2/text/advanced``       → ``{"bulkId", "messages": [{"to", "messageId", "status"}]}``
- ``POST /whatsapp/1/message/text``   → ``{"to", "messageCount", "messageId", "status"}``
- ``POST /whatsapp/1/message/template`` → ``{"bulkId", "messages": [{"to", "messageCount", ...}]}``

Errors use Infobip's shape ``{"requestError": {"serviceException": {"messageId", "text"}}}``.
A wrong or missing ``Authorization: App <key>`` header gets 401 when the fake has an api_key.

Trouble on demand, either for the next K requests or for requests matching a path/destination::

    with FakeInfobip(api_key="test-key") as fake:
        fake.fail_next(500)                 # the next request answers 500
        fake.fail_next(429, count=3)        # the next three answer 429 (with Retry-After)
        fake.hang_next(5.0)                 # the next request waits 5 s before answering
        fake.plan(status=401, to="15550001", count=None)    # always 401 for that number
        fake.plan(message_status={"groupName": "REJECTED", ...})  # 200, but rejected
        fake.clear()                        # forget all plans
        sender_url = fake.url

As a separate process (for tests that start real worker processes)::

    python -m tests.fakes.infobip --port 0 --record /tmp/requests.jsonl [--api-key K]

prints ``LISTENING <port>`` on stdout once ready and appends one JSON line per request to the
record file. A running process takes plans at ``POST /__fake__/plan`` (JSON: status, hang,
count, path, to) and ``POST /__fake__/clear``; those control calls are not recorded.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SMS_PATH = "/sms/2/text/advanced"
WHATSAPP_TEXT_PATH = "/whatsapp/1/message/text"
WHATSAPP_TEMPLATE_PATH = "/whatsapp/1/message/template"

_ERROR_TEXT = {
    400: ("BAD_REQUEST", "Bad request"),
    401: ("UNAUTHORIZED", "Invalid login details"),
    403: ("FORBIDDEN", "Forbidden"),
    404: ("NOT_FOUND", "Not found"),
    429: ("TOO_MANY_REQUESTS", "Too many requests"),
    500: ("GENERAL_ERROR", "Something went wrong. Please contact support."),
    502: ("GENERAL_ERROR", "Bad gateway"),
    503: ("SERVICE_UNAVAILABLE", "Service temporarily unavailable"),
}

PENDING_STATUS = {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",
                  "description": "Message sent to next instance"}
WHATSAPP_PENDING_STATUS = {"groupId": 1, "groupName": "PENDING", "id": 7, "name": "PENDING_ENROUTE",
                           "description": "Message sent to next instance"}


def error_body(status: int, text: str | None = None) -> dict:
    """Infobip's error envelope for HTTP `status`."""
    message_id, default = _ERROR_TEXT.get(status, ("GENERAL_ERROR", f"HTTP {status}"))
    return {"requestError": {"serviceException": {"messageId": message_id, "text": text or default}}}


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: dict
    body: object            # parsed JSON, or None when the body was not JSON
    raw: str
    response_status: int = 0
    message_ids: list = field(default_factory=list)

    def destinations(self) -> list[str]:
        """Every destination number named in the request body."""
        return _destinations(self.path, self.body)


@dataclass
class Plan:
    """Answer `status` (and/or wait `hang` seconds first) for matching requests.

    count=None means for ever; path/to narrow which requests match.
    """

    status: int | None = None
    hang: float = 0.0
    count: int | None = 1
    path: str | None = None
    to: str | None = None
    text: str | None = None
    message_status: dict | None = None   # with status None: answer 200 with this status object


def _destinations(path: str, body) -> list[str]:
    if not isinstance(body, dict):
        return []
    out: list[str] = []
    if path == SMS_PATH:
        for msg in body.get("messages") or []:
            if isinstance(msg, dict):
                out += [d.get("to") for d in msg.get("destinations") or [] if isinstance(d, dict)]
    elif path == WHATSAPP_TEXT_PATH:
        out.append(body.get("to"))
    elif path == WHATSAPP_TEMPLATE_PATH:
        out += [m.get("to") for m in body.get("messages") or [] if isinstance(m, dict)]
    return [d for d in out if isinstance(d, str)]


class FakeInfobip:
    """The fake server; use as a context manager (starts in a thread, stops on exit)."""

    def __init__(self, api_key: str | None = "test-infobip-key", port: int = 0,
                 record_file: str | None = None):
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.sent: dict[str, dict] = {}          # messageId → {"to", "path", "text"}
        self._plans: list[Plan] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._record_file = record_file
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The base URL to configure as INFOBIP_BASE_URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeInfobip:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-infobip", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()               # wakes any request that is hanging
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeInfobip:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- trouble on demand -------------------------------------------------------------
    def plan(self, status: int | None = None, *, hang: float = 0.0, count: int | None = 1,
             path: str | None = None, to: str | None = None, text: str | None = None,
             message_status: dict | None = None) -> None:
        """Queue a plan; the first matching plan answers each request (see `Plan`).

        message_status: a 200 whose per-message status is this object, e.g. Infobip's
        {"groupName": "REJECTED", "name": "REJECTED_DESTINATION", ...}.
        """
        with self._lock:
            self._plans.append(Plan(status=status, hang=hang, count=count, path=path, to=to, text=text,
                                    message_status=message_status))

    def fail_next(self, status: int, count: int = 1, *, text: str | None = None) -> None:
        """The next `count` requests answer HTTP `status` with an Infobip error body."""
        self.plan(status, count=count, text=text)

    def hang_next(self, seconds: float, count: int = 1) -> None:
        """The next `count` requests wait `seconds` before answering normally."""
        self.plan(None, hang=seconds, count=count)

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()

    # --- inspection --------------------------------------------------------------------
    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least `n` requests arrived (or `timeout`); returns a copy of them."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.wait(left)
            return list(self.requests)

    def delivery_report(self, message_id: str, group: str = "DELIVERED", *,
                        error: dict | None = None) -> dict:
        """One `results[]` entry in Infobip's delivery-report format for a sent message."""
        return delivery_report_entry(message_id, group, to=self.sent.get(message_id, {}).get("to"),
                                     error=error)

    # --- request handling (called from server threads) ----------------------------------
    def _take_plan(self, path: str, dests: list[str]) -> Plan | None:
        with self._lock:
            for plan in self._plans:
                if plan.path is not None and plan.path != path:
                    continue
                if plan.to is not None and plan.to not in dests:
                    continue
                if plan.count is not None:
                    plan.count -= 1
                    if plan.count <= 0:
                        self._plans.remove(plan)
                return plan
        return None

    def _new_message_id(self) -> str:
        return f"{next(self._ids):06d}-{uuid.uuid4()}"

    def handle(self, method: str, path: str, headers: dict, raw: bytes) -> tuple[int, dict, dict]:
        """(status, json_body, extra_headers) for one request; records it."""
        text = raw.decode("utf-8", "replace")
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        record = RecordedRequest(method=method, path=path, headers=headers, body=body, raw=text)
        status, payload, extra, hang = self._answer(record)
        record.response_status = status
        with self._arrived:
            self.requests.append(record)
            self._arrived.notify_all()
        if self._record_file:
            with self._lock, open(self._record_file, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(record)) + "\n")
                fh.flush()
        if hang:
            self._stopping.wait(hang)
        return status, payload, extra

    def _answer(self, record: RecordedRequest) -> tuple[int, dict, dict, float]:
        path, body = record.path, record.body
        if path not in (SMS_PATH, WHATSAPP_TEXT_PATH, WHATSAPP_TEMPLATE_PATH):
            return 404, error_body(404), {}, 0.0
        if record.method != "POST":
            return 405, error_body(405, "Method not allowed"), {}, 0.0
        plan = self._take_plan(path, _destinations(path, body))
        hang = plan.hang if plan else 0.0
        if plan and plan.status is not None:
            extra = {"Retry-After": "1"} if plan.status == 429 else {}
            return plan.status, error_body(plan.status, plan.text), extra, hang
        if self.api_key is not None:
            auth = record.headers.get("Authorization", "")
            if auth != f"App {self.api_key}":
                return 401, error_body(401), {}, hang
        problem = _validate(path, body)
        if problem:
            return 400, error_body(400, problem), {}, hang
        return (200, *self._accept(record, plan.message_status if plan else None), hang)

    def _accept(self, record: RecordedRequest, status: dict | None = None) -> tuple[dict, dict]:
        path, body = record.path, record.body
        bulk_id = str(uuid.uuid4())
        if path == SMS_PATH:
            out = []
            for msg in body["messages"]:
                for dest in msg["destinations"]:
                    mid = dest.get("messageId") or self._new_message_id()
                    self._remember(record, mid, dest["to"], msg.get("text"))
                    out.append({"to": dest["to"], "status": dict(status or PENDING_STATUS), "messageId": mid})
            return {"bulkId": bulk_id, "messages": out}, {}
        if path == WHATSAPP_TEXT_PATH:
            mid = body.get("messageId") or self._new_message_id()
            self._remember(record, mid, body["to"], body["content"]["text"])
            return {"to": body["to"], "messageCount": 1, "messageId": mid,
                    "status": dict(status or WHATSAPP_PENDING_STATUS)}, {}
        out = []
        for msg in body["messages"]:
            mid = msg.get("messageId") or self._new_message_id()
            self._remember(record, mid, msg["to"], None)
            out.append({"to": msg["to"], "messageCount": 1, "messageId": mid,
                        "status": dict(status or WHATSAPP_PENDING_STATUS)})
        return {"messages": out, "bulkId": bulk_id}, {}

    def _remember(self, record: RecordedRequest, message_id: str, to: str, text: str | None) -> None:
        record.message_ids.append(message_id)
        with self._lock:
            self.sent[message_id] = {"to": to, "path": record.path, "text": text}


def _validate(path: str, body) -> str | None:
    """Why Infobip would refuse this body (400), or None."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object"
    if path == SMS_PATH:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: must not be empty"
        for msg in messages:
            if not isinstance(msg, dict) or not isinstance(msg.get("text"), str) or not msg["text"]:
                return "messages[].text: must not be empty"
            dests = msg.get("destinations")
            if not isinstance(dests, list) or not dests:
                return "messages[].destinations: must not be empty"
            for dest in dests:
                if not isinstance(dest, dict) or not _phone_ok(dest.get("to")):
                    return "messages[].destinations[].to: invalid destination address"
        return None
    if path == WHATSAPP_TEXT_PATH:
        if not body.get("from"):
            return "from: must not be blank"
        if not _phone_ok(body.get("to")):
            return "to: invalid destination address"
        content = body.get("content")
        if not isinstance(content, dict) or not isinstance(content.get("text"), str) or not content["text"]:
            return "content.text: must not be blank"
        if len(content["text"]) > 4096:
            return "content.text: size must be between 1 and 4096"
        return None
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: must not be empty"
    for msg in messages:
        if not isinstance(msg, dict) or not msg.get("from"):
            return "messages[].from: must not be blank"
        if not _phone_ok(msg.get("to")):
            return "messages[].to: invalid destination address"
        content = msg.get("content")
        if not isinstance(content, dict) or not content.get("templateName") or not content.get("language"):
            return "messages[].content: templateName and language are required"
        if not isinstance(content.get("templateData"), dict):
            return "messages[].content.templateData: must not be null"
    return None


def _phone_ok(value) -> bool:
    """Infobip takes international numbers with or without a leading +."""
    if not isinstance(value, str):
        return False
    digits = value[1:] if value.startswith("+") else value
    return digits.isdigit() and 6 <= len(digits) <= 15


def delivery_report_entry(message_id: str, group: str = "DELIVERED", *, to: str | None = None,
                          error: dict | None = None) -> dict:
    """A `results[]` entry as Infobip posts it to a notifyUrl.

    group: DELIVERED, UNDELIVERABLE, EXPIRED, REJECTED or PENDING.
    """
    names = {"DELIVERED": (3, 5, "DELIVERED_TO_HANDSET", "Message delivered to handset"),
             "UNDELIVERABLE": (2, 9, "UNDELIVERABLE_NOT_DELIVERED", "Message sent not delivered"),
             "EXPIRED": (4, 15, "EXPIRED_EXPIRED", "Message expired"),
             "REJECTED": (5, 6, "REJECTED_NETWORK", "Network is forbidden"),
             "PENDING": (1, 3, "PENDING_WAITING_DELIVERY", "Message sent, waiting for delivery report")}
    group_id, status_id, name, description = names[group]
    if error is None:
        error = ({"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "description": "No Error",
                  "permanent": False} if group in ("DELIVERED", "PENDING") else
                 {"groupId": 1, "groupName": "HANDSET_ERRORS", "id": 27, "name": "EC_ABSENT_SUBSCRIBER",
                  "description": "Absent Subscriber", "permanent": False})
    return {"bulkId": str(uuid.uuid4()), "messageId": message_id, "to": to or "41793026727",
            "sentAt": "2024-01-01T10:00:00.000+0000", "doneAt": "2024-01-01T10:00:05.000+0000",
            "smsCount": 1, "mccMnc": "22801",
            "price": {"pricePerMessage": 0.01, "currency": "EUR"},
            "status": {"groupId": group_id, "groupName": group, "id": status_id, "name": name,
                       "description": description},
            "error": error}


def _make_handler(fake: FakeInfobip):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeInfobip/1.0"

        def log_message(self, format, *args):  # keep test output quiet
            pass

        def _read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _reply(self, status: int, payload: dict, extra: dict | None = None) -> None:
            data = json.dumps(payload).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a read timeout) while we hung

        def _dispatch(self) -> None:
            raw = self._read_body()
            path = self.path.split("?", 1)[0]
            if path.startswith("/__fake__/"):
                self._control(path, raw)
                return
            status, payload, extra = fake.handle(self.command, path, dict(self.headers.items()), raw)
            self._reply(status, payload, extra)

        def _control(self, path: str, raw: bytes) -> None:
            try:
                spec = json.loads(raw or b"{}")
            except ValueError:
                self._reply(400, {"error": "body must be JSON"})
                return
            if path == "/__fake__/plan":
                fake.plan(spec.get("status"), hang=float(spec.get("hang") or 0), count=spec.get("count", 1),
                          path=spec.get("path"), to=spec.get("to"), text=spec.get("text"),
                          message_status=spec.get("message_status"))
            elif path == "/__fake__/clear":
                fake.clear()
            else:
                self._reply(404, {"error": "unknown control path"})
                return
            self._reply(200, {"ok": True})

        do_POST = _dispatch
        do_GET = _dispatch
        do_PUT = _dispatch
        do_DELETE = _dispatch

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the fake Infobip server as a process.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", help="append one JSON line per received request to this file")
    parser.add_argument("--api-key", default="test-infobip-key",
                        help="the key expected in 'Authorization: App <key>' ('' accepts any)")
    args = parser.parse_args(argv)
    fake = FakeInfobip(api_key=args.api_key or None, port=args.port, record_file=args.record)
    stop = threading.Event()
    import signal
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with fake:
        print(f"LISTENING {fake.port}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
