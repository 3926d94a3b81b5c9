"""Stopping the worker: SIGTERM/SIGINT set a flag and wake whatever the loop is waiting on."""

from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger("pagerpal.worker")


class StopFlag:
    """A stop request the loop checks between steps and can wait on with select().

    `set()` is safe to call from a signal handler: it flips a threading.Event and writes one
    byte to a pipe, so a select() on `fileno()` (beside the LISTEN socket) returns at once.
    """

    def __init__(self):
        self._event = threading.Event()
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def set(self) -> None:
        """Ask the worker to stop after the step in progress."""
        self._event.set()
        try:
            os.write(self._write, b"x")
        except (BlockingIOError, OSError):  # pipe full or closed: the flag alone is enough
            pass

    def is_set(self) -> bool:
        return self._event.is_set()

    def fileno(self) -> int:
        """Readable once `set()` was called."""
        return self._read

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds or until set; True when set."""
        return self._event.wait(timeout)

    def close(self) -> None:
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass


def install_signal_handlers(stop: StopFlag) -> None:
    """SIGTERM and SIGINT → `stop.set()`; a second one is logged and handled the same way."""

    def handle(signum, _frame):
        log.info("stop requested", extra={"fields": {"signal": signal.Signals(signum).name}})
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
