"""Alert ingestion: parsed alert events in, incidents opened, counted, resolved.

Dedup is the schema's job. The partial unique index `uq_incidents_open_alert` allows one
open incident per (source, external id); a trigger is an INSERT ... ON CONFLICT DO
NOTHING whose conflict target repeats that index's predicate exactly, so concurrent
identical alerts — in any number of web processes — produce one incident, and the
losers count themselves on it with one UPDATE. There is no read-then-write anywhere.

The hot path is the repeat: during an alert storm nearly every alert counts on an open
incident. A trigger therefore tries the counting UPDATE first, and on PostgreSQL that
UPDATE and the request's rate-limit token travel as one statement (a data-modifying CTE):
one round trip between BEGIN and COMMIT, Core statements compiled once, no ORM object
loaded for the source or the incident. Only a new incident loads its row and pages.
Batched webhooks (Grafana, Alertmanager) count all their repeats with one statement and
open all their new incidents with a second (see `_apply_batch`).
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert, Select, bindparam, cast, exists, insert, literal, select, text, true, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from pagerpal_core.db import UTCDateTime, in_transaction
from pagerpal_core.driver_sql import Autocommitted, DriverStatement
from pagerpal_core.errors import Conflict, RateLimited
from pagerpal_core.models import AlertSource, Incident, IncidentEvent
from pagerpal_core.models.incidents import OPEN_INCIDENT_PREDICATE, OPEN_STATUSES
from pagerpal_core.payloads.common import ACKNOWLEDGE, IGNORE, RESOLVE, TRIGGER, AlertEvent
from pagerpal_core.services import escalation, maintenance
from pagerpal_core.services import incidents as incident_actions
from pagerpal_core.services.alert_sources import map_severity
from pagerpal_core.services.rate_limit import (
    TAKE_TOKEN,
    BucketResult,
    TokenBucket,
    explain_refusal,
    take_token,
)
from pagerpal_core.services.source_cache import SourceSnapshot
from pagerpal_core.services.timeline import event_row, insert_event_rows, record_event

log = logging.getLogger("pagerpal.ingestion")

# Outcomes, as the webhook responses report them.
CREATED = "created"                 # a new incident was opened (and paged)
REPEATED = "repeated"               # counted on the open incident; nobody paged
RESOLVED = "resolved"               # the open incident was resolved by the source
ACKNOWLEDGED = "acknowledged"       # the open incident was acknowledged by the source
NOT_OPEN = "not_open"               # recovery/ack with no open incident: a no-op
ALREADY_ACKNOWLEDGED = "already_acknowledged"
IGNORED = "ignored"                 # a state PagerPal records but does not act on

TEST_ALERT_EXTERNAL_ID = "pagerpal-test-alert"

# What ingestion accepts as "the source": the ORM row, or the per-process snapshot the web
# authenticated against (services/source_cache.py).
SourceLike = AlertSource | SourceSnapshot


@dataclass
class IngestResult:
    """What one alert event did."""

    outcome: str
    external_id: str
    incident_id: int | None
    message: str
    occurrence_count: int | None = None

    def as_dict(self) -> dict:
        """The result as the webhook answers it (occurrence_count only for repeats)."""
        return {"outcome": self.outcome, "external_id": self.external_id, "incident_id": self.incident_id,
                "message": self.message,
                **({"occurrence_count": self.occurrence_count} if self.occurrence_count else {})}


def should_note_repeat(occurrence_count: int) -> bool:
    """Whether this repeat writes a timeline row: the first repeat, then at 10, 100, 1000, ...

    An alert storm of a million repeats writes seven rows; the count in between lives in
    `occurrence_count` and `repeats_unlogged`.
    """
    if occurrence_count == 2:
        return True
    if occurrence_count < 10:
        return False
    while occurrence_count % 10 == 0:
        occurrence_count //= 10
    return occurrence_count == 1


def ingest_events(session: Session, source: SourceLike, events: list[AlertEvent], *, now: datetime,
                  base_url: str, bucket: TokenBucket | None = None, autocommit: bool = False,
                  engine: Engine | None = None) -> list[IngestResult]:
    """Apply every event of one request in the caller's transaction; results in input order.

    `source` is the AlertSource or the SourceSnapshot the request authenticated as. With
    `bucket`, the request first spends one token of the source's rate limit, checked
    against `source`: RateLimited, or SourceChanged when the source was changed since it
    was read (authenticate again) — raised before anything is written. Without it (test
    alerts, internal callers) no token is taken.

    With `autocommit` (the web's choice), on PostgreSQL and while `session` has not begun a
    transaction, the token — together with the count of a lone repeat, which is then the
    whole request — is committed by its own statement, on a connection of its own in
    autocommit mode: neither the source row nor the incident row stays locked while Python
    works, which is what lets an alert storm on one incident go at the database's pace. So
    is a new incident nobody can be paged for (one statement with its timeline rows). What
    follows otherwise (a new incident and its pages, a batch) runs in the caller's
    transaction as usual.

    Events are applied sorted by external id so two requests carrying the same alerts in
    different orders lock their incident rows in the same order, and the token is always
    taken first, so every path locks the source row before incident rows (no deadlock).

    `engine` is the session's, when the caller knows it: a scoped session is then not made
    to create a session only to name its engine (an autocommitted request never needs one).
    """
    run = _Run.start(session, source, now=now, base_url=base_url, bucket=bucket, autocommit=autocommit,
                     engine=engine)
    try:
        if bucket is not None and not (len(events) == 1 and events[0].action == TRIGGER):
            _take_token(run)  # a lone trigger takes it in the same statement as its count
        if run.postgres and len(events) > 1:
            return _apply_batch(run, events)
        order = sorted(range(len(events)), key=lambda i: events[i].external_id)
        results: list[IngestResult | None] = [None] * len(events)
        for i in order:
            results[i] = _apply(run, events[i])
        return results
    finally:
        run.end_autocommit()


def ingest_event(session: Session, source: SourceLike, event: AlertEvent, *, now: datetime,
                 base_url: str) -> IngestResult:
    """Apply one event: open or count (trigger), resolve, acknowledge, or record (ignore)."""
    return _apply(_Run.start(session, source, now=now, base_url=base_url, bucket=None), event)


def rate_limited_error(source_name: str, retry_after: int) -> RateLimited:
    """The 429 for a source over its rate limit."""
    return RateLimited(f"alert source {source_name!r} is over its rate limit; retry in {retry_after} s",
                       retry_after=retry_after)


def _rate_limited(source: SourceLike, result: BucketResult) -> RateLimited:
    error = rate_limited_error(source.name, result.retry_after)
    error.wait = result.wait  # how long no token is coming, unrounded (the web remembers it)
    return error


@dataclass
class _Run:
    """One request's ingestion: where it runs and whether its token is taken yet."""

    session: Session
    source: SourceLike
    now: datetime
    base_url: str
    bucket: TokenBucket | None
    engine: Engine
    postgres: bool
    autocommit: bool = False
    token_taken: bool = False
    _autocommitted: Autocommitted | None = None
    _source_row: AlertSource | None = None

    @classmethod
    def start(cls, session: Session, source: SourceLike, engine: Engine | None = None, **kwargs) -> _Run:
        engine = engine or session.get_bind()  # once: a Flask-SQLAlchemy session looks it up per call
        return cls(session, source, engine=engine, postgres=engine.dialect.name == "postgresql", **kwargs)

    @property
    def token_pending(self) -> bool:
        return self.bucket is not None and not self.token_taken

    def begin_autocommit(self) -> None:
        """Run the next statements each as its own transaction when allowed (see
        ingest_events): prepared, on a pooled driver connection in autocommit mode."""
        if self._autocommitted is not None or not (self.autocommit and self.postgres):
            return
        if not in_transaction(self.session):
            self._autocommitted = Autocommitted(self.engine)

    def end_autocommit(self) -> None:
        """Back to the session's transaction for whatever follows (nothing is pending)."""
        if self._autocommitted is not None:
            self._autocommitted, autocommitted = None, self._autocommitted
            autocommitted.close()

    @property
    def autocommitting(self) -> bool:
        return self._autocommitted is not None

    def execute(self, statement: DriverStatement, params: dict) -> tuple | None:
        """`statement`'s first row: autocommitted when the run is, else in the session."""
        if self.autocommitting:
            return self._autocommitted.execute(statement, params)
        row = self.session.execute(statement.statement, params).first()
        return None if row is None else tuple(row)

    def source_row(self) -> AlertSource:
        """The source as an ORM object (the timeline's actor, `incident.alert_source`).

        Built from the snapshot instead of read: by now the token statement has confirmed
        the snapshot against the row (same key hash, active flag and version). Placed in
        the session as a persistent object, so `incident.alert_source` finds it without a
        query; a column the snapshot lacks loads on first access.
        """
        if isinstance(self.source, AlertSource):
            return self.source
        if self._source_row is None:
            self._source_row = _attach_snapshot(self.session, self.source)
        return self._source_row


def _attach_snapshot(session: Session, snapshot: SourceSnapshot) -> AlertSource:
    key = identity_key(AlertSource, snapshot.id)
    existing = session.identity_map.get(key)
    if existing is not None:
        return existing
    row = AlertSource(id=snapshot.id, name=snapshot.name, kind=snapshot.kind, active=snapshot.active,
                      policy_id=snapshot.policy_id, team_id=snapshot.team_id, severity_map=snapshot.severity_map,
                      key_hash=snapshot.key_hash, config_version=snapshot.config_version)
    make_transient_to_detached(row)  # "this row exists": no INSERT, no UPDATE of unchanged values
    session.add(row)
    return row


def _apply_batch(run: _Run, events: list[AlertEvent]) -> list[IngestResult]:
    """A batch (Grafana, Alertmanager) on PostgreSQL, in the caller's transaction.

    When every event is a trigger, all repeats are counted by one UPDATE and all new
    incidents inserted by one multi-row INSERT (both in external-id order, so concurrent
    batches lock rows in the same order); only the new incidents then page one by one.
    A batch that also resolves or acknowledges is applied event by event, in the same
    order, so a "firing then resolved" pair inside one call keeps its meaning.
    """
    order = sorted(range(len(events)), key=lambda i: events[i].external_id)
    results: list[IngestResult | None] = [None] * len(events)
    if any(event.action != TRIGGER for event in events):
        for i in order:
            results[i] = _apply(run, events[i])
        return results
    firsts: dict[str, int] = {}   # external id → its first event (in external-id order)
    counts: dict[str, int] = {}   # external id → how many times this batch repeats it
    for i in order:
        firsts.setdefault(events[i].external_id, i)
        counts[events[i].external_id] = counts.get(events[i].external_id, 0) + 1
    done = _count_repeats_at_once(run, events, firsts, counts)
    fresh = [i for ext, i in firsts.items() if ext not in done]
    opened = _insert_all_at_once(run, [events[i] for i in fresh]) if fresh else {}
    for ext, i in firsts.items():
        if ext in done:
            continue
        incident = opened.get(ext)
        if incident is None:  # opened or resolved by someone else in between: one by one
            done[ext] = _trigger(run, events[i])
            extra = counts[ext] - 1
            done[ext] = _count_more(run, events[i], done[ext], extra) if extra else done[ext]
        else:
            done[ext] = _opened(run, events[i], incident)
            if counts[ext] > 1:
                done[ext] = _count_more(run, events[i], done[ext], counts[ext] - 1)
    for i in order:
        results[i] = done[events[i].external_id]
    return results


# Named SQL (PostgreSQL): count n more occurrences on each listed open incident at once.
# `locked` takes the row locks in external-id order (FOR UPDATE under ORDER BY), the order
# every other writer uses, so two batches sharing alerts cannot deadlock.
COUNT_REPEATS_AT_ONCE = text(f"""
    WITH v AS (SELECT * FROM unnest(CAST(:external_ids AS varchar[]), CAST(:counts AS integer[]))
                      AS v(external_id, n)),
         locked AS (SELECT i.id, v.n FROM incidents i JOIN v ON v.external_id = i.external_id
                     WHERE i.alert_source_id = :source_id AND i.{OPEN_INCIDENT_PREDICATE}
                     ORDER BY i.external_id FOR UPDATE OF i)
    UPDATE incidents SET occurrence_count = occurrence_count + locked.n,
                         repeats_unlogged = repeats_unlogged + locked.n,
                         last_seen_at = :now, updated_at = :now
      FROM locked WHERE incidents.id = locked.id
    RETURNING incidents.id, incidents.external_id, incidents.occurrence_count, incidents.repeats_unlogged,
              locked.n
""").bindparams(bindparam("now", type_=UTCDateTime))


def _count_repeats_at_once(run: _Run, events: list[AlertEvent], firsts: dict[str, int],
                           counts: dict[str, int]) -> dict[str, IngestResult]:
    rows = run.session.execute(COUNT_REPEATS_AT_ONCE, {
        "external_ids": list(firsts), "counts": [counts[ext] for ext in firsts],
        "source_id": run.source.id, "now": run.now}).all()
    done = {}
    for row in rows:
        event = events[firsts[row.external_id]]
        before = row.occurrence_count - row.n
        # A timeline note when this batch passed the 2nd, 10th, 100th... occurrence.
        if any(should_note_repeat(c) for c in range(before + 1, row.occurrence_count + 1)):
            _note_repeats(run, row.id, row.occurrence_count, row.repeats_unlogged, event)
        done[row.external_id] = IngestResult(REPEATED, row.external_id, row.id,
                                             "duplicate of the open incident; counted, nobody paged",
                                             row.occurrence_count)
    return done


# Named SQL (PostgreSQL, ORM): open many incidents in one multi-row INSERT (SQLAlchemy's
# "insertmanyvalues"), each unless its alert already has an open incident; RETURNING loads
# the new Incident objects.
INSERT_ALL_IF_NO_OPEN = (
    postgresql.insert(Incident)
    .on_conflict_do_nothing(index_elements=["alert_source_id", "external_id"],
                            index_where=text(OPEN_INCIDENT_PREDICATE))
    .returning(Incident)
)


def _insert_all_at_once(run: _Run, events: list[AlertEvent]) -> dict[str, Incident]:
    rows = [_new_incident_values(run, event) for event in events]
    return {incident.external_id: incident for incident in run.session.scalars(INSERT_ALL_IF_NO_OPEN, rows)}


def _count_more(run: _Run, event: AlertEvent, result: IngestResult, extra: int) -> IngestResult:
    """Count `extra` further copies of `event` that came in the same batch."""
    for _ in range(extra):
        counted = _count_repeat(run, event.external_id)
        if counted is not None:
            result = _repeated(run, event, *counted)
    return result


def _take_token(run: _Run) -> None:
    """Spend the request's token as its first statement, or raise RateLimited / SourceChanged."""
    bucket = run.bucket
    run.begin_autocommit()
    if run.autocommitting:
        if run.execute(TAKE_TOKEN_DRIVER, _token_params(run)) is None:
            _refused(run)
    else:
        result = take_token(run.session, run.source.id, now=run.now, capacity=bucket.capacity,
                            refill_per_second=bucket.refill_per_second, expect=run.source)
        if not result.allowed:
            raise _rate_limited(run.source, result)
    run.token_taken = True
    run.end_autocommit()


def _apply(run: _Run, event: AlertEvent) -> IngestResult:
    if event.action == TRIGGER:
        return _trigger(run, event)
    if event.action == RESOLVE:
        return _resolve(run, event)
    if event.action == ACKNOWLEDGE:
        return _acknowledge(run, event)
    if event.action == IGNORE:
        return _ignore(run, event)
    raise ValueError(f"unknown alert action {event.action!r}")


# --- trigger: count or insert ------------------------------------------------------------

_incidents = Incident.__table__
_now = bindparam("now", type_=UTCDateTime)


def _insert_if_no_open(dialect_insert):
    # Named SQL: open an incident unless (source, external id) already has an open one.
    # The conflict target names the partial unique index by its columns and its exact
    # predicate; PostgreSQL and SQLite both pick an arbiter index only on an identical
    # WHERE clause, which is why the predicate is one shared constant. RETURNING the whole
    # row loads the new Incident without a second query; built once per dialect and run
    # with a parameter dict, so its compiled form is cached.
    return select(Incident).from_statement(
        dialect_insert(_incidents)
        .on_conflict_do_nothing(index_elements=["alert_source_id", "external_id"],
                                index_where=text(OPEN_INCIDENT_PREDICATE))
        .returning(*_incidents.c))


INSERT_IF_NO_OPEN = {"postgresql": _insert_if_no_open(postgresql.insert),
                     "sqlite": _insert_if_no_open(sqlite.insert)}
# The same, answering only the new incident's id (nothing to load). Explicit parameters:
# the PostgreSQL form is also a CTE of OPEN_WITH_TWO_EVENTS.
_NEW_INCIDENT_COLUMNS = (
    "alert_source_id", "external_id", "title", "description", "severity", "status", "details", "links",
    "team_id", "policy_id", "current_level", "escalation_round", "page_generation", "unrouted",
    "occurrence_count", "last_seen_at", "repeats_unlogged", "created_at", "updated_at", "assignment_pinned")
INSERT_ID_IF_NO_OPEN = {
    name: dialect_insert(_incidents)
    .values({column: bindparam(column, type_=_incidents.c[column].type) for column in _NEW_INCIDENT_COLUMNS})
    .on_conflict_do_nothing(index_elements=["alert_source_id", "external_id"],
                            index_where=text(OPEN_INCIDENT_PREDICATE))
    .returning(_incidents.c.id)
    for name, dialect_insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))}


def _open_unless_held(count: int, *, take_token: bool = False) -> Select:
    # Named SQL (PostgreSQL): open an incident unless (source, external id) has an open one or
    # a maintenance window covers :source_id or :policy_id, and then write `count` timeline rows
    # for it (parameters e0_kind, e0_message, ... as `event_row` names them). One row: the new
    # id (NULL when nothing was written) and whether a window holds the source's paging. With
    # `take_token`, first the request's token as in TAKE_TOKEN_AND_COUNT (nothing is written
    # without it), and the row starts with the tokens left (NULL = refused).
    held = maintenance.ACTIVE_WINDOW_ID_FOR.order_by(None).limit(None).exists()  # any window at all
    allowed = [~held]
    if take_token:
        tok = TAKE_TOKEN["postgresql", True].cte("tok")
        allowed.append(exists(select(tok.c.rate_tokens)))
    new = (postgresql.insert(_incidents)
           .from_select(list(_NEW_INCIDENT_COLUMNS),
                        select(*[bindparam(c, type_=_incidents.c[c].type) for c in _NEW_INCIDENT_COLUMNS])
                        .where(*allowed))
           .on_conflict_do_nothing(index_elements=["alert_source_id", "external_id"],
                                   index_where=text(OPEN_INCIDENT_PREDICATE))
           .returning(_incidents.c.id).cte("ins"))
    events = IncidentEvent.__table__
    columns = [c for c in events.c if c.name not in ("id", "incident_id")]
    rows = [select(new.c.id, *[cast(bindparam(f"e{i}_{c.name}", type_=c.type), c.type) for c in columns])
            for i in range(count)]
    written = insert(events).from_select(["incident_id", *[c.name for c in columns]], union_all(*rows))
    row = [select(new.c.id).scalar_subquery().label("id"), held.label("held")]
    if take_token:
        row.insert(0, select(tok.c.rate_tokens).scalar_subquery().label("tokens"))
    return select(*row).add_cte(written.cte("ev"))


OPEN_UNLESS_HELD = DriverStatement(_open_unless_held(2))
TAKE_TOKEN_AND_OPEN_UNLESS_HELD = DriverStatement(_open_unless_held(2, take_token=True))

# Per database (engine): (source id, external id) of alerts this process saw open an incident
# or repeat one. Their next alert is most likely a repeat, so it counts first; any other alert
# of a source nobody is paged for tries to open first: one statement either way, usually. Only
# an order of attempts: the statements decide (a conflicting open counts, a missed count opens).
_LIKELY_OPEN: weakref.WeakKeyDictionary[Engine, set[tuple[int, str]]] = weakref.WeakKeyDictionary()
_LIKELY_OPEN_MAX = 10_000


def _likely_open(run: _Run, key: tuple[int, str]) -> None:
    seen = _LIKELY_OPEN.setdefault(run.engine, set())
    if len(seen) >= _LIKELY_OPEN_MAX:  # a bound on memory: start again
        seen.clear()
    seen.add(key)

# Named SQL: count one more occurrence on the open incident of (source, external id).
# One UPDATE under the row lock, so 50 concurrent repeats add exactly 50.
COUNT_REPEAT = (
    update(_incidents)
    .where(_incidents.c.alert_source_id == bindparam("match_source_id"),
           _incidents.c.external_id == bindparam("match_external_id"),
           text(OPEN_INCIDENT_PREDICATE))
    .values(occurrence_count=_incidents.c.occurrence_count + 1,
            repeats_unlogged=_incidents.c.repeats_unlogged + 1,
            last_seen_at=_now, updated_at=_now)
    .returning(_incidents.c.id, _incidents.c.occurrence_count, _incidents.c.repeats_unlogged)
)


def _take_and_count() -> Select:
    # Named SQL (PostgreSQL): a repeat in one round trip. `tok` takes the request's token
    # while the source still has the key hash, active flag and version the request
    # authenticated with; `rep` counts the occurrence on the open incident only if the
    # token was taken. Always one row: tokens NULL = refused (nothing written); id NULL =
    # no open incident (the token is taken; the caller opens one).
    tok = TAKE_TOKEN["postgresql", True].cte("tok")
    rep = COUNT_REPEAT.where(exists(select(tok.c.rate_tokens))).cte("rep")
    one = select(literal(1).label("one")).subquery("one")
    return (select(select(tok.c.rate_tokens).scalar_subquery().label("tokens"),
                   rep.c.id, rep.c.occurrence_count, rep.c.repeats_unlogged)
            .select_from(one.outerjoin(rep, true())))


COUNT_REPEAT_DRIVER = DriverStatement(COUNT_REPEAT)
TAKE_TOKEN_AND_COUNT = DriverStatement(_take_and_count())
TAKE_TOKEN_DRIVER = DriverStatement(TAKE_TOKEN["postgresql", True])

# Named SQL: take `logged` repeats off the unlogged count once they are on the timeline.
MARK_REPEATS_LOGGED = (
    update(_incidents).where(_incidents.c.id == bindparam("incident_id"))
    .values(repeats_unlogged=_incidents.c.repeats_unlogged - bindparam("logged"))
)


def _note_repeats_statement() -> Insert:
    # Named SQL (PostgreSQL): put `logged` repeats of incident :incident_id on its timeline —
    # one event row (parameters e0_kind, e0_message, ... as `event_row` names them) — and take
    # them off its unlogged count, together. The counting UPDATE came first, so the row
    # already says how many there are.
    mark = MARK_REPEATS_LOGGED.values(updated_at=_now).returning(_incidents.c.id).cte("mark")
    events = IncidentEvent.__table__
    columns = [c for c in events.c if c.name not in ("id", "incident_id")]
    row = select(mark.c.id, *[cast(bindparam(f"e0_{c.name}", type_=c.type), c.type) for c in columns])
    return (insert(events).from_select(["incident_id", *[c.name for c in columns]], row).add_cte(mark)
            .returning(events.c.id))


NOTE_REPEATS = DriverStatement(_note_repeats_statement())


def _count_repeat(run: _Run, external_id: str) -> tuple[int, int, int] | None:
    """(incident id, occurrence count, unlogged repeats) after counting one more, or None
    when no incident is open. Takes the request's token first when it is still due: on
    PostgreSQL in the same statement, autocommitted when the run allows (the caller ends
    that with `run.end_autocommit()`)."""
    params = {"match_source_id": run.source.id, "match_external_id": external_id, "now": run.now}
    if run.token_pending and run.postgres:
        run.begin_autocommit()  # left on: a new incident with nobody to page may follow (_trigger)
        tokens, incident_id, occurrences, unlogged = run.execute(TAKE_TOKEN_AND_COUNT,
                                                                 {**params, **_token_params(run)})
        if tokens is None:
            _refused(run)
        run.token_taken = True
        return None if incident_id is None else (incident_id, occurrences, unlogged)
    if run.token_pending:
        # SQLite: the same two writes as two statements inside the transaction's write lock
        # (BEGIN IMMEDIATE), which no other writer can interleave with.
        if run.session.execute(TAKE_TOKEN["sqlite", True], _token_params(run)).scalar() is None:
            _refused(run)
        run.token_taken = True
    return run.execute(COUNT_REPEAT_DRIVER, params)


def _token_params(run: _Run) -> dict:
    source = run.source
    return {"source_id": source.id, **run.bucket.params(run.now), "expect_key_hash": source.key_hash,
            "expect_config_version": source.config_version}


def _refused(run: _Run) -> None:
    """The token statement matched nothing: the source changed, or its bucket is empty."""
    run.end_autocommit()
    result = explain_refusal(run.session, run.source.id, now=run.now, capacity=run.bucket.capacity,
                             refill_per_second=run.bucket.refill_per_second, expect=run.source)
    raise _rate_limited(run.source, result)


def _new_incident_values(run: _Run, event: AlertEvent) -> dict:
    source, now = run.source, run.now
    return dict(
        alert_source_id=source.id, external_id=event.external_id, title=event.title,
        description=event.description or "", severity=map_severity(source, event.severity),
        status="triggered", details=event.details or {}, links=event.links or [],
        team_id=source.team_id, policy_id=source.policy_id, current_level=0, escalation_round=0,
        page_generation=0, unrouted=False, occurrence_count=1, last_seen_at=now, repeats_unlogged=0,
        created_at=now, updated_at=now, assignment_pinned=False,
    )


def _trigger(run: _Run, event: AlertEvent) -> IngestResult:
    # Count, else insert: during a storm nearly every alert is a repeat, which is then one
    # statement. Between the two statements another request may open the incident (the
    # insert conflicts: count again) or resolve it (the count misses: insert again).
    # Three rounds are plenty. On PostgreSQL a lone alert runs autocommitted: a repeat is
    # one statement in all, a new incident nobody can be paged for one more.
    # A new incident nobody is paged for opens first when this process has not seen its key
    # open (see _LIKELY_OPEN): one statement too.
    dialect = "postgresql" if run.postgres else "sqlite"
    unrouted = escalation.unrouted_unless_held(run.source.policy_id)
    seen = (run.source.id, event.external_id)
    open_first = unrouted is not None and run.postgres and seen not in _LIKELY_OPEN.get(run.engine, ())
    try:
        for _ in range(3):
            if not open_first:
                counted = _count_repeat(run, event.external_id)
                if counted is not None:
                    _likely_open(run, seen)
                    return _repeated(run, event, *counted)
            open_first = False
            opened = _open_unrouted(run, event, unrouted) if unrouted is not None else _HELD
            if opened is _HELD:  # it may page, or a maintenance window holds it
                run.end_autocommit()  # paging writes many rows: one transaction
                incident = run.session.scalars(INSERT_IF_NO_OPEN[dialect], _new_incident_values(run, event)).first()
                opened = None if incident is None else _opened(run, event, incident)
            if opened is not None:
                _likely_open(run, seen)
                return opened
        raise Conflict("the alert's incident changed state repeatedly while ingesting; retry")
    finally:
        run.end_autocommit()


# What _open_unrouted answers when a maintenance window covers the new incident.
_HELD = object()


def _opened_detail(event: AlertEvent) -> dict:
    return {"external_id": event.external_id, "source_severity": event.severity, "payload": event.raw}


def _opened(run: _Run, event: AlertEvent, incident: Incident) -> IngestResult:
    incident_actions.trigger_incident(run.session, incident, actor=run.source_row(), now=run.now,
                                      base_url=run.base_url, detail=_opened_detail(event))
    return IngestResult(CREATED, event.external_id, incident.id, "incident opened", 1)


def _open_unrouted(run: _Run, event: AlertEvent, reason: str):
    """Open an incident nobody can be paged for, written as `trigger_incident` would leave it
    (flagged unrouted after its first paging pass; "triggered" and "unrouted" on its timeline)
    without loading it as an object. None when an open incident exists; _HELD, writing
    nothing, when a maintenance window covers it (`trigger_incident` holds it then).

    On PostgreSQL one statement checks the windows and writes the incident and its events
    (atomic on its own, so it may run autocommitted); on SQLite a query and two INSERTs in
    the caller's transaction.
    """
    session, now, source = run.session, run.now, run.source
    values = {**_new_incident_values(run, event), "unrouted": True, "page_generation": 1}
    kind, message, detail = escalation.unrouted_event(reason)
    events = [event_row(session, None, "triggered", incident_actions.opened_message(event.title), actor=source,
                        detail=_opened_detail(event), now=now),
              event_row(session, None, kind, message, actor=source, detail=detail, now=now)]
    covers = {"now": now, "source_id": run.source.id}  # and policy_id (None) from `values`
    if run.postgres:
        params = {**values, **covers, **_numbered(events)}
        if run.token_pending:
            run.begin_autocommit()
        if run.token_pending and not run.autocommitting:  # in the caller's transaction: the token first
            _take_token(run)
        if run.token_pending:  # autocommitted: the token in the same statement
            tokens, incident_id, held = run.execute(TAKE_TOKEN_AND_OPEN_UNLESS_HELD, {**params, **_token_params(run)})
            if tokens is None:
                _refused(run)
            run.token_taken = True
        else:
            incident_id, held = run.execute(OPEN_UNLESS_HELD, params)
        if held:
            return _HELD
    else:
        if maintenance.window_in_force_id(session, run.source.id, values["policy_id"], now) is not None:
            return _HELD
        incident_id = session.execute(INSERT_ID_IF_NO_OPEN["sqlite"], values).scalar()
        if incident_id is not None:
            insert_event_rows(session, [{**row, "incident_id": incident_id} for row in events])
    if incident_id is None:
        return None
    return IngestResult(CREATED, event.external_id, incident_id, "incident opened", 1)


def _numbered(rows: list[dict]) -> dict:
    return {f"e{i}_{name}": value for i, row in enumerate(rows) for name, value in row.items()
            if name != "incident_id"}


def _repeated(run: _Run, event: AlertEvent, incident_id: int, count: int, unlogged: int) -> IngestResult:
    if should_note_repeat(count):
        _note_repeats(run, incident_id, count, unlogged, event)
    return IngestResult(REPEATED, event.external_id, incident_id,
                        "duplicate of the open incident; counted, nobody paged", count)


def _note_repeats(run: _Run, incident_id: int, count: int, unlogged: int, event: AlertEvent) -> None:
    # Written without loading the incident: on PostgreSQL one statement (autocommitted when
    # the count was), on SQLite two in the caller's transaction, which holds the write lock.
    if count == 2:
        kind, message = "repeated", "Alert repeated; further repeats are counted and summarised"
        detail = {"occurrence_count": count, "payload": event.raw}
    else:
        kind, message = "repeats_summarised", f"{unlogged} more repeats (seen {count} times in all)"
        detail = {"repeats": unlogged, "occurrence_count": count, "payload": event.raw}
    row = event_row(run.session, incident_id, kind, message, actor=run.source, detail=detail, now=run.now)
    if run.postgres:
        run.execute(NOTE_REPEATS, {**_numbered([row]), "incident_id": incident_id, "logged": unlogged,
                                   "now": run.now})
    else:
        insert_event_rows(run.session, [row])
        run.session.execute(MARK_REPEATS_LOGGED, {"incident_id": incident_id, "logged": unlogged})


def summarise_unlogged_repeats(session: Session, incident: Incident, *, actor, now: datetime) -> None:
    """Write the repeats not yet on the timeline as one row (before a resolve or ack)."""
    unlogged, count = incident.repeats_unlogged, incident.occurrence_count
    if unlogged:
        record_event(session, incident, "repeats_summarised",
                     f"{unlogged} more repeats (seen {count} times in all)",
                     actor=actor, now=now, detail={"repeats": unlogged, "occurrence_count": count})
        incident.repeats_unlogged = 0
        session.flush()


# --- resolve, acknowledge, ignore --------------------------------------------------------

def _open_incident(session: Session, source: SourceLike, external_id: str) -> Incident | None:
    # Locks the open incident (PostgreSQL) so a concurrent recovery waits and then finds
    # it resolved; the partial unique index guarantees at most one.
    return session.scalars(
        select(Incident)
        .where(Incident.alert_source_id == source.id, Incident.external_id == external_id,
               Incident.status.in_(OPEN_STATUSES))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def _no_open_incident(session: Session, source: SourceLike, external_id: str, verb: str) -> IngestResult:
    last_id = session.scalar(
        select(Incident.id).where(Incident.alert_source_id == source.id, Incident.external_id == external_id)
        .order_by(Incident.id.desc()).limit(1))
    if last_id is None:
        message = f"no incident for this alert; nothing to {verb}"
    else:
        message = f"the alert's incident is already resolved; nothing to {verb}"
    return IngestResult(NOT_OPEN, external_id, last_id, message)


def _resolve(run: _Run, event: AlertEvent) -> IngestResult:
    session, now = run.session, run.now
    incident = _open_incident(session, run.source, event.external_id)
    if incident is None:
        return _no_open_incident(session, run.source, event.external_id, "resolve")
    source = run.source_row()
    record_event(session, incident, "alert_recovered", f"Source {source.name} reports the alert recovered",
                 actor=source, now=now, detail={"state": event.state, "payload": event.raw})
    summarise_unlogged_repeats(session, incident, actor=source, now=now)
    incident_actions.resolve_incident(session, incident, actor=source, now=now,
                                      note="the alert recovered at its source")
    return IngestResult(RESOLVED, event.external_id, incident.id, "incident resolved",
                        incident.occurrence_count)


def _acknowledge(run: _Run, event: AlertEvent) -> IngestResult:
    session, now = run.session, run.now
    incident = _open_incident(session, run.source, event.external_id)
    if incident is None:
        return _no_open_incident(session, run.source, event.external_id, "acknowledge")
    if incident.status == "acknowledged":
        return IngestResult(ALREADY_ACKNOWLEDGED, event.external_id, incident.id,
                            "incident already acknowledged", incident.occurrence_count)
    source = run.source_row()
    summarise_unlogged_repeats(session, incident, actor=source, now=now)
    incident_actions.acknowledge_incident(session, incident, actor=source, now=now)
    return IngestResult(ACKNOWLEDGED, event.external_id, incident.id, "incident acknowledged",
                        incident.occurrence_count)


def _ignore(run: _Run, event: AlertEvent) -> IngestResult:
    session, now = run.session, run.now
    incident = _open_incident(session, run.source, event.external_id)
    # No log line of its own: the request's one line counts the "ignored" outcome.
    if incident is None:
        return IngestResult(IGNORED, event.external_id, None,
                            f"state {event.state} recorded; no action taken")
    source = run.source_row()
    record_event(session, incident, "alert_state",
                 f"Source {source.name} reports state {event.state}; no action taken",
                 actor=source, now=now, detail={"state": event.state, "payload": event.raw})
    return IngestResult(IGNORED, event.external_id, incident.id,
                        f"state {event.state} noted on the open incident; no action taken")


# --- test alerts -------------------------------------------------------------------------

def send_test_alert(session: Session, source: AlertSource, *, now: datetime, base_url: str,
                    resolve: bool = False) -> IngestResult:
    """Open (or with resolve=True, resolve) the source's test incident, exactly as a webhook would.

    The UI's "send test alert" button and `flask pagerpal send-test-alert` call this; the
    test incident pages the source's escalation policy like any other.
    """
    if not source.active:
        raise Conflict(f"alert source {source.name!r} is inactive; activate it before testing")
    event = AlertEvent(
        action=RESOLVE if resolve else TRIGGER,
        external_id=TEST_ALERT_EXTERNAL_ID,
        title=f"Test alert from PagerPal ({source.name})",
        description="A test alert sent from PagerPal to check that this source's paging works. "
                    "Resolve it when you have been paged.",
        severity=None,
        details={"test": True},
        raw={"test": True, "source": source.name, "status": "resolved" if resolve else "firing"},
        state="resolved" if resolve else "firing",
    )
    return ingest_event(session, source, event, now=now, base_url=base_url)
