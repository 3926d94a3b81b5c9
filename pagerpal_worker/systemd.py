"""The systemd notify protocol (sd_notify): one datagram per state on $NOTIFY_SOCKET.

Only the standard library is needed: the socket is a Unix datagram socket, and a name that
starts with "@" is in the abstract namespace.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("pagerpal.worker")


def notify(state: str) -> bool:
    """Send `state` (e.g. "READY=1") to systemd; False when not run under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # Never block: if the receiver's queue is full, dropping one ping beats freezing
            # the loop (and its shutdown) until someone reads.
            sock.setblocking(False)
            sock.connect(address)
            sock.send(state.encode("utf-8"))
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        # A missing socket must not take the worker down; systemd will notice on its own.
        log.warning("sd_notify failed", extra={"fields": {"state": state, "error": str(exc)}})
        return False


def ready() -> bool:
    """Startup finished (Type=notify units wait for this)."""
    return notify("READY=1")


_last_watchdog = 0.0
WATCHDOG_MIN_SECONDS = 1.0


def watchdog() -> bool:
    """Still alive (WatchdogSec= restarts the unit when these stop coming); at most once a second."""
    global _last_watchdog
    now = time.monotonic()
    if not os.environ.get("NOTIFY_SOCKET") or now - _last_watchdog < WATCHDOG_MIN_SECONDS:
        return False
    _last_watchdog = now
    return notify("WATCHDOG=1")


def stopping() -> bool:
    """Shutdown began."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """A one-line status shown by `systemctl status`."""
    return notify("STATUS=" + text.replace("\n", " ")[:200])
