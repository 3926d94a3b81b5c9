"""`flask pagerpal self-test`: run the end-to-end self-test once, now."""

from __future__ import annotations

import sys

import click

from pagerpal_web.cli import pagerpal


@pagerpal.command("self-test")
def self_test_command():
    """Send a synthetic alert through the web's ingestion URL (PAGERPAL_BASE_URL), page SELF_TEST_DESTINATION
    on SELF_TEST_CHANNEL through the outbox and the real sender, and resolve it. Prints the outcome and
    duration, records them (dashboard and /settings), and exits 1 on failure — which also opens an incident
    on the admins' policy (SELF_TEST_POLICY_ID). Works whether or not SELF_TEST_INTERVAL_MINUTES is set.
    """
    from pagerpal_core.timeutil import utcnow
    from pagerpal_web.config import settings
    from pagerpal_worker.main import make_context
    from pagerpal_worker.steps.self_test import run_self_test

    ctx = make_context(settings())
    try:
        outcome = run_self_test(ctx, utcnow())
    finally:
        ctx.close()
        ctx.session_factory.kw["bind"].dispose()
    if outcome.ok:
        click.echo(f"Self-test passed: page sent in {outcome.duration_ms:.0f} ms (incident #{outcome.incident_id}, "
                   "resolved).")
        return
    click.echo(f"Self-test FAILED: {outcome.error}", err=True)
    sys.exit(1)
