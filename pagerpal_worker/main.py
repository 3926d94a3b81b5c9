"""`pagerpal-worker`: the one process that sends pages and escalates (also `flask pagerpal worker`)."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys

from pagerpal_core.db import make_engine, make_session_factory
from pagerpal_core.logs import setup_logging
from pagerpal_core.schema import production_refusal
from pagerpal_core.services.action_links import configure_links
from pagerpal_core.settings import ConfigError, Settings
from pagerpal_worker import systemd
from pagerpal_worker.context import WorkerContext
from pagerpal_worker.leader import make_leader
from pagerpal_worker.loop import STEPS, run_cycle, serve
from pagerpal_worker.signals import StopFlag, install_signal_handlers, restore_signal_handlers

log = logging.getLogger("pagerpal.worker")


def build_senders(settings: Settings) -> dict:
    """The configured channel senders; none when sending is disabled (safe mode calls nobody)."""
    if not settings.notification_sending_enabled:
        return {}
    try:
        from pagerpal_worker.providers import build_senders as build
    except ImportError:
        log.warning("no provider senders are installed; every page will fail until they are")
        return {}
    return build(settings)


def make_context(settings: Settings, *, stop: StopFlag | None = None, senders: dict | None = None) \
        -> WorkerContext:
    """A worker context on `settings`' database (tests pass their own senders)."""
    engine = make_engine(settings.database_url)
    configure_links(engine, settings)  # pages the worker writes carry links signed with SECRET_KEY
    return WorkerContext(settings=settings, session_factory=make_session_factory(engine),
                         senders=build_senders(settings) if senders is None else senders,
                         stop=stop or StopFlag())


def run_worker(settings: Settings, *, once: bool = False) -> int:
    """Run the worker until SIGTERM/SIGINT (or one cycle with `once`); returns the exit code."""
    stop = StopFlag()
    previous_handlers = install_signal_handlers(stop)
    ctx = make_context(settings, stop=stop)
    log.info("worker starting", extra={"fields": {
        "instance": ctx.identity, "database": "sqlite" if settings.is_sqlite else "postgresql",
        "sending_enabled": settings.notification_sending_enabled,
        "poll_interval_s": settings.worker_poll_interval,
        "steps": [s.name for s in STEPS if s.is_enabled(settings)],
        "channels": sorted(ctx.senders)}})
    try:
        leader = make_leader(settings.database_url)
        if once:
            return _run_once(ctx, leader)
        systemd.ready()
        return serve(ctx, leader)
    finally:
        systemd.stopping()
        ctx.close()
        ctx.session_factory.kw["bind"].dispose()
        restore_signal_handlers(previous_handlers)
        stop.close()


def _run_once(ctx: WorkerContext, leader) -> int:
    """One cycle under leadership (so it never runs beside a live leader); 1 on any failure."""
    if not leader.try_acquire():
        log.error("another worker is leading; not running a cycle beside it")
        return 1
    try:
        report = run_cycle(ctx)
    finally:
        leader.release()
    return 1 if report.errors else 0


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    parser = argparse.ArgumentParser(prog="pagerpal-worker", description=__doc__)
    parser.add_argument("--once", action="store_true",
                        help="take leadership, run every step once, then exit (fails if another worker leads)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"pagerpal-worker: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.secret_values())
    problems = production_refusal(settings, web=False)
    if problems:
        print(f"pagerpal-worker: refusing to start in production: {'; '.join(problems)}", file=sys.stderr)
        return 2
    # `kill -USR1 <pid>` prints every thread's stack to stderr: how to see where a stuck
    # worker is stuck, without stopping it.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    return run_worker(settings, once=args.once)


if __name__ == "__main__":
    sys.exit(main())
