"""What every step gets: settings, a session factory, the senders, who this worker is."""

from __future__ import annotations

import os
import random
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import sessionmaker

from pagerpal_core.settings import Settings
from pagerpal_worker.providers.base import Sender
from pagerpal_worker.signals import StopFlag

# Provider calls run on this many threads, so one slow or hanging provider request does not
# hold up every other page in the batch.
DISPATCH_CONCURRENCY = 8


@dataclass
class StepStats:
    """In-memory record of a step's runs since the last heartbeat write."""

    runs: int = 0
    last_started_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_duration_ms: float | None = None
    dirty_error: bool = False


@dataclass
class WorkerContext:
    settings: Settings
    session_factory: sessionmaker
    senders: dict[str, Sender]
    stop: StopFlag
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    # Unique per process start: leases name it, so a restarted worker that reuses a pid
    # never mistakes an old lease for its own.
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    rng: random.Random = field(default_factory=random.Random)
    stats: dict[str, StepStats] = field(default_factory=dict)
    # Provider outcomes that could not be written (database down); retried first next time.
    unrecorded: list = field(default_factory=list)
    last_heartbeat_at: datetime | None = None
    last_sweep_at: datetime | None = None
    # Set by a step that stopped at its batch limit with work left: the loop skips its wait.
    more_work: bool = False
    _executor: ThreadPoolExecutor | None = None

    @property
    def identity(self) -> str:
        """host:pid:token — what `notifications.leased_by` and heartbeats name this worker."""
        return f"{self.host}:{self.pid}:{self.token}"

    @property
    def instance_key(self) -> str:
        """host:pid, the name this worker leases rows and holds leadership under."""
        return f"{self.host}:{self.pid}"

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The thread pool that runs provider sends, created on first use."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=DISPATCH_CONCURRENCY,
                                                thread_name_prefix="pagerpal-send")
        return self._executor

    def close(self) -> None:
        """Wait for sends in flight, then drop the thread pool."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
