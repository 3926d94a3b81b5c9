"""`flask pagerpal worker`: the same worker as the `pagerpal-worker` console script."""

from __future__ import annotations

import sys

import click

from pagerpal_web.cli import pagerpal


@pagerpal.command("worker")
@click.option("--once", is_flag=True, help="Take leadership, run every step once, then exit.")
def worker_command(once: bool):
    """Run the paging worker (dispatch, escalation, chores, heartbeats) until SIGTERM/SIGINT."""
    from pagerpal_web.config import settings
    from pagerpal_worker.main import run_worker

    sys.exit(run_worker(settings(), once=once))
