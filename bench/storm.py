"""Alert storm benchmark: 10,000 identical alerts, then 10,000 alerts over 100 keys, against the raw ceiling.

    .venv/bin/python bench/storm.py [--alerts 10000] [--keys 100] [--senders 8]
                                    [--backend both|postgresql|sqlite] [--workers 2] [--threads 4]
                                    [--rounds 4]

When a datacenter loses power, monitoring repeats the same alert thousands of times a
minute. For each backend (PostgreSQL, then SQLite in WAL mode), on a scratch database:

1. storm — `--alerts` identical alerts POSTed to /api/v1/alerts by `--senders` concurrent
   senders, each on its own keep-alive connection, to gunicorn (`--workers` × `--threads`).
   Checks: exactly one incident, occurrence count = alerts, exactly one page per contact
   method of the on-call person (two: SMS and email), and no timeline row per repeat.
2. spread — `--alerts` alerts over `--keys` keys: checks `--keys` incidents, one page each.

Each phase is measured against the raw ceiling of the same backend in the same run
(bench/harness.py: the dedup INSERT ... ON CONFLICT, the repeat UPDATE, one timeline row
for a new incident, one transaction per alert, the same senders), the two taking turns over
`--rounds` slices of the alerts so a host whose speed drifts weighs on both alike. Prints both rates, the
ratio (target for the storm: ≥ 35 %) and the checks; exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    Gunicorn,
    ScratchDatabase,
    Senders,
    add_serving_arguments,
    chosen_backends,
    http_senders,
    interleaved,
    machine,
    raw_senders,
    report,
    run_concurrently,
)
from sqlalchemy import func, select  # noqa: E402

from pagerpal_core.db import make_engine, make_session_factory  # noqa: E402
from pagerpal_core.models import Incident, IncidentEvent, Notification  # noqa: E402
from pagerpal_core.services.alert_sources import create_alert_source  # noqa: E402
from pagerpal_core.services.escalation_policies import create_policy  # noqa: E402
from pagerpal_core.services.schedules import create_rotation, create_schedule  # noqa: E402
from pagerpal_core.services.users import create_user  # noqa: E402
from pagerpal_core.timeutil import utcnow  # noqa: E402

# Timeline rows one incident of a storm may carry: opened, paged, the first repeat, and one
# summary at 10, 100, 1000, ... occurrences. Anything near the alert count means a row per repeat.
TIMELINE_ALLOWANCE = 16


def seed(url: str) -> dict:
    """Sources for each phase (HTTP and raw), routed to on-call people; returns ids and keys."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            now = utcnow()
            storm_person = create_user(session, email="storm@example.test", name="Storm On Call", contact_methods=[
                {"channel": "sms", "destination": "+14155550101"},
                {"channel": "email", "destination": "storm@example.test"}])
            spread_person = create_user(session, email="spread@example.test", name="Spread On Call",
                                        contact_methods=[{"channel": "sms", "destination": "+14155550102"}])
            policies = {}
            for label, person in (("storm", storm_person), ("spread", spread_person)):
                schedule = create_schedule(session, name=f"{label} primary", timezone="UTC")
                create_rotation(session, schedule, start_date=date(2020, 1, 1), shift_unit="weeks",
                                handoff_time="09:00", participants=[person])
                policies[label] = create_policy(session, name=label, levels=[
                    {"delay_minutes": 30, "targets": [{"type": "schedule", "id": schedule.id}]}]).id
            out = {}
            for phase in ("storm", "spread"):
                issued = create_alert_source(session, name=f"{phase}-http", policy_id=policies[phase], now=now)
                out[phase] = (issued.source.id, issued.key)
                out[f"{phase}-raw"] = create_alert_source(session, name=f"{phase}-raw", now=now).source.id
            warm = create_alert_source(session, name="warm-up", policy_id=policies["spread"], now=now)
            out["warm"] = (warm.source.id, warm.key)
            out["warm-raw"] = create_alert_source(session, name="warm-up-raw", now=now).source.id
            session.commit()
            return out
    finally:
        engine.dispose()


def storm_alerts(count: int) -> list[dict]:
    return [{"title": "Datacenter power lost", "external_id": "dc-power", "severity": "critical",
             "details": {"site": "ams1", "sequence": i}} for i in range(count)]


def spread_alerts(count: int, keys: int) -> list[dict]:
    return [{"title": f"Rack {i % keys} unreachable", "external_id": f"rack-{i % keys}", "severity": "critical",
             "details": {"rack": i % keys, "sequence": i}} for i in range(count)]


def check(label: str, ok: bool, detail: str) -> bool:
    print(f"    check {label:<34} {'ok' if ok else 'FAILED'}  ({detail})", flush=True)
    return ok


def verify(url: str, source_id: int, *, alerts: int, keys: int, pages_per_incident: int) -> bool:
    """The phase's incidents, occurrences, pages and timeline rows, as the issue demands."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            incident_ids = select(Incident.id).where(Incident.alert_source_id == source_id).scalar_subquery()
            count, occurrences, max_count = session.execute(
                select(func.count(), func.sum(Incident.occurrence_count), func.max(Incident.occurrence_count))
                .where(Incident.alert_source_id == source_id)).one()
            pages = session.scalar(select(func.count()).select_from(Notification)
                                   .where(Notification.incident_id.in_(incident_ids)))
            events = session.scalar(select(func.count()).select_from(IncidentEvent)
                                    .where(IncidentEvent.incident_id.in_(incident_ids)))
    finally:
        engine.dispose()
    ok = check("incidents", count == keys, f"{count} for {keys} key(s)")
    ok &= check("occurrences counted", occurrences == alerts,
                f"{occurrences} for {alerts} alerts" + (f", one incident at {max_count}" if keys == 1 else ""))
    ok &= check("pages", pages == keys * pages_per_incident,
                f"{pages}; expected {pages_per_incident} per incident")
    ok &= check("timeline rows (no row per repeat)", events <= keys * TIMELINE_ALLOWANCE,
                f"{events} rows for {alerts} alerts")
    return ok


def run_backend(backend: str, args) -> tuple[bool, dict]:
    """Both phases on one backend; returns (checks passed, {phase: ratio})."""
    ratios, ok = {}, True
    with tempfile.TemporaryDirectory(prefix="pagerpal-storm-") as workdir, \
            ScratchDatabase(backend, Path(workdir)) as db:
        ids = seed(db.url)
        warmup = [{"title": f"warm-up {i}", "external_id": f"warm-{i}"} for i in range(4 * args.senders)]
        phases = {"storm": (storm_alerts(args.alerts), 1, 2), "spread": (spread_alerts(args.alerts, args.keys),
                                                                         args.keys, 1)}
        print(f"\n{backend}: {args.senders} senders, gunicorn {args.workers} workers × {args.threads} threads, "
              f"ceiling and PagerPal taking turns over {args.rounds} slices ({machine()})", flush=True)
        measured = {}
        with Gunicorn(db.url, Path(workdir), workers=args.workers, threads=args.threads) as server:
            run_concurrently(warmup, args.senders, raw_senders(db, ids["warm-raw"]))
            run_concurrently(warmup, args.senders, http_senders(server.url, ids["warm"][1]))
            for phase, (alerts, _, _) in phases.items():
                with Senders(args.senders, raw_senders(db, ids[f"{phase}-raw"])) as raw, \
                        Senders(args.senders, http_senders(server.url, ids[phase][1])) as web:
                    try:
                        measured[phase] = interleaved(alerts, {"raw": raw, "web": web}, args.rounds)
                    except RuntimeError:
                        server.say_errors()
                        raise
        for phase, (alerts, keys, pages) in phases.items():
            what = (f"{len(alerts)} identical alerts" if keys == 1 else f"{len(alerts)} alerts over {keys} keys")
            print(f"  {phase}: {what}", flush=True)
            raw_rate = report("raw ceiling", len(alerts), *measured[phase]["raw"])
            web_rate = report("PagerPal HTTP (gunicorn)", len(alerts), *measured[phase]["web"])
            ratios[phase] = web_rate / raw_rate
            target = " (target ≥ 35%)" if phase == "storm" else ""
            print(f"    PagerPal reaches {ratios[phase]:.0%} of {backend}'s raw ceiling{target}", flush=True)
            ok &= verify(db.url, ids[phase][0], alerts=len(alerts), keys=keys, pages_per_incident=pages)
    return ok, ratios


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--senders", type=int, default=8)
    add_serving_arguments(parser)
    args = parser.parse_args(argv)
    backends = chosen_backends(args)
    if backends is None:
        return 2
    ok, summary = True, {}
    for backend in backends:
        passed, ratios = run_backend(backend, args)
        ok &= passed
        summary[backend] = ratios
    print("\nsummary: " + "; ".join(f"{backend} storm {r['storm']:.0%}, spread {r['spread']:.0%} of the ceiling"
                                    for backend, r in summary.items())
          + f" — checks {'passed' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
