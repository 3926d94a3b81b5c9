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
        """True once a stop was asked for."""
        return self._event.is_set()

    def fileno(self) -> int:
        """Readable once `set()` was called."""
        return self._read

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds or until set; True when set."""
        return self._event.wait(timeout)

    def close(self) -> None:
        """Close the wake-up pipe's two ends."""
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass


def install_signal_handlers(stop: StopFlag) -> dict:
    """SIGTERM and SIGINT → `stop.set()`; returns the previous handlers for `restore_signal_handlers`."""

    def handle(signum, _frame):
        log.info("stop requested", extra={"fields": {"signal": signal.Signals(signum).name}})
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may set handlers; the caller stops us another way
    return {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}


def restore_signal_handlers(previous: dict) -> None:
    """Put back what `install_signal_handlers` replaced (the CLI runs inside another program)."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)
