"""`python -m bench.scale` (`make bench-scale`, not in CI): issue #14's "scale measured, not assumed".

On a PostgreSQL database of the run's own, migrated and seeded like bench's, measures on the EMPTY
database, then loads `--events` stored events (20,000,000 by default) spread over the last `--days`
days, with a decision each, the sends one in ten of them caused and those emails' webhook events
(bench.scale_load), and measures the same again on the FULL database:

    P1         /v1/batch events/s (web only, closed loop, 100 events a request)
    P3         event accepted -> provider received, no-delay rule, 200 events/s (web + qcluster)
    Dashboard  the 7-day Dashboard, server time of the real page (Django's test client, logged in)
    retention  dropping the oldest day's partitions (triggermail.partitions.partitions_drop_before)
               against DELETE of the next day's rows in one timed transaction (and the VACUUM it leaves)

The Dashboard is also timed when only the newest 8 days are loaded (the loader goes newest first):
its 7-day window then holds the same rows as on the full database, so that column isolates what
the older history costs. Prints the table (measure | empty | full | ratio | goal | met?), the load
rate, each table's and index's size, and writes it all to var/bench-scale-<stamp>.md.

    python -m bench.scale [--events 20000000] [--days 60] [--keep]

A ratio is full / empty for times and empty / full for rates: above 1 means slower when full; the
goal is <= 1.2. Both sides run in the same process minutes apart on the same shared machine, so
the ratio is fair where absolute figures are not (the load average is printed beside each).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import statistics
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import psycopg

from bench import payloads
from bench.context import Run
from bench.database import Databases, database_url, template_prepare
from bench.deploy import Deployment
from bench.latency import p3_immediate
from bench.loadgen import Target, closed_loop, run_async
from bench.monitor import Monitor
from bench.profile import FULL
from bench.provider import ProviderServer
from bench.scale_load import History, history_load
from bench.scale_report import AT_100, WAL_LZ4, Measure, report_write
from bench.stats import percentile
from bench.walsize import WalPoint, wal_bytes, wal_point
from harness.processes import BASE_DIR
from triggermail import partitions

P3_KEY = "P3 accepted → provider received (no delay)"


def day_columns(connection: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(table, column) where each day's rows of the partitioned tables are found: the partition keys,
    or before the migration that adds it, the decision's own time in place of its event's."""
    columns = [(t.table, t.key) for t in partitions.TABLES]
    row = connection.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
        (partitions.DECISIONS.table, partitions.DECISIONS.key),
    ).fetchone()
    if row is None:
        columns = [(t, "created_at" if t == partitions.DECISIONS.table else c) for t, c in columns]
    return columns


@dataclass
class Scale:
    """One run: the database, the deployment's pieces, and what was measured in each state."""

    run: Run
    name: str
    url: str
    history: History
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def record(self, state: str, measure: str, value: float) -> None:
        self.results.setdefault(measure, {})[state] = value

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.run.say(text)


def load_average() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def backends(scale: Scale) -> int:
    """Connections the deployment holds open to the run's database (this process's own excluded)."""
    with psycopg.connect(scale.url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        ).fetchone()
    return int(row[0]) if row else 0


def wal_per(url: str, start: WalPoint, units: int) -> tuple[float, str]:
    """WAL bytes per unit of work since `start`: this database's (pg_waldump), else the cluster's."""
    cluster, ours = wal_bytes(url, start)
    if ours is None:
        return cluster / max(1, units), "cluster-wide: an upper bound"
    return ours / max(1, units), "this database's records, pg_waldump"


@contextlib.contextmanager
def deployment(scale: Scale, label: str, *, hosts: int) -> Iterator[Deployment]:
    """The production processes on the run's one database (bench.context's Run.deployment copies a
    template instead; here both states must be measured on the same database)."""
    run = scale.run
    log_dir = run.log_dir / label
    log_dir.mkdir(exist_ok=True)
    deployed = Deployment(env=run.env(scale.url), log_dir=log_dir)
    run.monitor.database = scale.name
    run.monitor.roots["web"] = lambda: [p.popen.pid for p in deployed.webs if p.alive]
    run.monitor.roots["worker"] = lambda: [p.popen.pid for p in deployed.hosts if p.alive]
    try:
        deployed.web_start()
        if hosts:
            deployed.hosts_start(hosts)
        yield deployed
    finally:
        deployed.stop()
        run.monitor.database = ""


def _batches(target: Target, prefix: str) -> Iterator[tuple[bytes, int]]:
    for users, body in payloads.batches(prefix, size=FULL.p1_batch):
        yield target.request("/v1/batch", body), len(users)


def p1(scale: Scale, state: str) -> None:
    run = scale.run
    with deployment(scale, f"p1-{state}", hosts=0) as deployed:
        target = Target.from_url(deployed.base_url, run.write_key)
        connections = run.profile.connections
        run_async(closed_loop(target, _batches(target, f"s1w{state}"), connections=connections, duration=2.0))
        start, wal = run.monitor.mark(), wal_point(scale.url)
        result = run_async(
            closed_loop(
                target, _batches(target, f"s1{state}"), connections=connections, duration=run.profile.p1_seconds
            )
        )
        end = run.monitor.mark()
        held = backends(scale)
    run.cpu_record(f"P1 {state}", start, end)
    per_event, source = wal_per(scale.url, wal, result.items_ok)
    scale.record(state, "P1", result.items_per_second)
    scale.record(state, "P1 WAL", per_event)
    scale.note(
        f"P1 {state}: {result.items_ok:,} events in {result.elapsed:.1f} s = {result.items_per_second:,.0f} events/s, "
        f"{result.failed} requests failed; WAL {per_event:,.0f} B/event ({source}); {held} connections held by the "
        f"web host; {load_average()}"
    )
    # No worker ran: mark P1's events processed, or P3's workers would spend its time on them.
    with psycopg.connect(scale.url, autocommit=True) as connection:
        connection.execute("UPDATE events_event SET processed_at = now() WHERE processed_at IS NULL")


def checkpoint(scale: Scale) -> None:
    """Write out every dirty page now, so a measure starts at the same point of the checkpoint cycle
    on both sides: otherwise the load's and its VACUUM's gigabytes are flushed during the full side."""
    started = time.perf_counter()
    with psycopg.connect(scale.url, autocommit=True) as connection:
        connection.execute("CHECKPOINT")
    scale.run.say(f"CHECKPOINT took {time.perf_counter() - started:.1f} s")


@contextlib.contextmanager
def wal_compressed(scale: Scale) -> Iterator[None]:
    """The run's database with wal_compression=lz4 for every new session (a superuser's per-database
    setting): full-page images, which grow with the indexes' size, compressed."""
    with psycopg.connect(scale.url, autocommit=True) as connection:
        connection.execute(f'ALTER DATABASE "{scale.name}" SET wal_compression = lz4')
    try:
        yield
    finally:
        with psycopg.connect(scale.url, autocommit=True) as connection:
            connection.execute(f'ALTER DATABASE "{scale.name}" RESET wal_compression')


def p3(scale: Scale, state: str, variant: str = "", *, rate: float | None = None) -> None:
    run = scale.run
    label = f"{state}{variant}"
    slug = "".join(c for c in label if c.isalnum())
    profile, run.profile = run.profile, run.profile.with_options(p3_rate=rate)
    try:
        with deployment(scale, f"p3-{slug}", hosts=1) as deployed:
            wal = wal_point(scale.url)
            p3_immediate(run, deployed, prefix=f"s3{slug}")
            held = backends(scale)
    finally:
        run.profile = profile
    _phase, used, wall = run.cpu[-1]
    run.cpu[-1] = (f"P3 {label}", used, wall)
    run.checks[-1].phase = f"P3 {label}"
    values = run.latencies.pop(P3_KEY)
    run.rows.clear()
    scale.record(state, f"P3 p50{variant}", percentile(values, 50))
    scale.record(state, f"P3 p99{variant}", percentile(values, 99))
    emails = len(values) + 50  # the measured events and the 50 of the warm-up, each an email
    per_email, source = wal_per(scale.url, wal, emails)
    scale.record(state, f"P3 WAL{variant}", per_email)
    # CPU per event+email of the product's own processes and its database: what history could make
    # grow. Latency at a rate that keeps the 2 cores ~95 % busy is mostly queueing, and moves with
    # any other load between the two sides; CPU per event does not.
    scale.record(state, f"P3 CPU{variant}", (used["web"] + used["worker"] + used["postgres"]) / emails)
    scale.note(
        f"P3 {label}: n={len(values):,}, p50 {percentile(values, 50) * 1000:.0f} ms, "
        f"p99 {percentile(values, 99) * 1000:.0f} ms; WAL {per_email:,.0f} B per event+email ({source}); "
        f"{held} connections held by web + worker host; {load_average()}"
    )


def dashboard(scale: Scale, state: str, runs: int = 5) -> None:
    from django.db import connections

    from bench.dashboard import dashboard_time

    timings, queries = dashboard_time("7d", runs)
    connections.close_all()
    scale.record(state, "Dashboard 7d", statistics.median(timings))
    scale.note(
        f"Dashboard 7d {state}: median {statistics.median(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms "
        f"over {runs} runs, {queries} queries; {load_average()}"
    )


def day_rows(connection: psycopg.Connection[Any], lo: datetime, hi: datetime) -> int:
    total = 0
    for table, column in day_columns(connection):
        row = connection.execute(f"SELECT count(*) FROM {table} WHERE {column} >= %s AND {column} < %s", (lo, hi))
        total += int(row.fetchone()[0])  # type: ignore[index]
    return total


def retention(scale: Scale, state: str) -> None:
    """Drop day 0's partitions; DELETE day 1's rows, in one timed transaction, with what
    partitions_drop_before does around a drop (the suppressions pointing at them set NULL; sends and
    decisions keep the ids of gone events, on both sides)."""
    history = scale.history
    (drop_lo, drop_hi), (del_lo, del_hi) = history.day(0), history.day(1)
    with psycopg.connect(scale.url, autocommit=True) as connection:
        dropped_rows, deleted_rows = day_rows(connection, drop_lo, drop_hi), day_rows(connection, del_lo, del_hi)
        started = time.perf_counter()
        with connection.transaction():
            # Decisions go with their events; sends stay, keeping the gone event's id (triggermail.partitions).
            connection.execute(
                "DELETE FROM campaigns_decision WHERE event_id IN"
                " (SELECT id FROM events_event WHERE received_at >= %s AND received_at < %s)",
                (del_lo, del_hi),
            )
            connection.execute(
                "UPDATE campaigns_suppression SET provider_event_id = NULL WHERE provider_event_id IN"
                " (SELECT id FROM campaigns_providerevent WHERE received_at >= %s AND received_at < %s)",
                (del_lo, del_hi),
            )
            for table, column in day_columns(connection):
                connection.execute(f"DELETE FROM {table} WHERE {column} >= %s AND {column} < %s", (del_lo, del_hi))
        deleted_in = time.perf_counter() - started
        started = time.perf_counter()
        for table in ("campaigns_providerevent", "campaigns_decision", "campaigns_send", "events_event"):
            connection.execute(f"VACUUM {table}")
        vacuumed_in = time.perf_counter() - started
    scale.record(state, "DELETE a day", deleted_in)
    scale.record(state, "VACUUM after DELETE", vacuumed_in)
    scale.record(state, "rows deleted", deleted_rows)
    scale.note(
        f"retention {state}: DELETE of {del_lo:%Y-%m-%d} ({deleted_rows:,} rows of events, decisions and provider "
        f"events) took {deleted_in:.2f} s, then VACUUM {vacuumed_in:.2f} s; {load_average()}"
    )
    if not partitioned(connection_url=scale.url):
        scale.note(f"retention {state}: the tables are not partitioned in this checkout: no partition to drop")
        return
    from django.db import connections

    day_partitions = [partitions.partition_name(t.table, drop_lo.date()) for t in partitions.TABLES]
    with psycopg.connect(scale.url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT coalesce(sum(pg_total_relation_size(to_regclass(name))), 0) FROM unnest(%s::text[]) AS name",
            (day_partitions,),
        ).fetchone()
    files = int(row[0]) if row else 0
    scale.record(state, "bytes dropped", files)
    started = time.perf_counter()
    names = partitions.partitions_drop_before(before=drop_hi)
    dropped_in = time.perf_counter() - started
    connections.close_all()
    scale.record(state, "drop a day", dropped_in)
    scale.record(state, "rows dropped", dropped_rows)
    # The dedup keys of the dropped day are not in a partition: retention DELETEs them (records_prune).
    started = time.perf_counter()
    with psycopg.connect(scale.url, autocommit=True) as connection:
        keys = connection.execute(
            "DELETE FROM events_messagekey WHERE received_at >= %s AND received_at < %s", (drop_lo, drop_hi)
        ).rowcount
    keys_in = time.perf_counter() - started
    scale.record(state, "DELETE a day's message keys", keys_in)
    scale.note(f"retention {state}: DELETE of the dropped day's {keys:,} message keys took {keys_in:.2f} s")
    scale.note(
        f"retention {state}: partitions_drop_before({drop_hi:%Y-%m-%d}) dropped {', '.join(names) or 'nothing'} "
        f"({dropped_rows:,} rows, {files / 2**20:,.0f} MiB of files with their indexes) in {dropped_in * 1000:.0f} ms"
    )


def partitioned(*, connection_url: str) -> bool:
    with psycopg.connect(connection_url, autocommit=True) as connection:
        row = connection.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass('events_event')").fetchone()
    return row is not None and row[0] == "p"


def partitions_ensure(scale: Scale) -> None:
    from django.db import connections

    names = partitions.partitions_ensure(since=scale.history.start, until=scale.history.now + timedelta(days=2))
    connections.close_all()
    scale.run.say(f"partitions ensured: {len(names)} created")


def measure(scale: Scale, state: str) -> None:
    scale.run.say(f"measuring on the {state} database")
    checkpoint(scale)
    p1(scale, state)
    checkpoint(scale)
    p3(scale, state)
    checkpoint(scale)
    p3(scale, state, AT_100, rate=100)
    checkpoint(scale)
    with wal_compressed(scale):
        p3(scale, state, WAL_LZ4)
    dashboard(scale, state)


def sizes(url: str) -> list[tuple[str, str, int, int]]:
    """(table, index or '', bytes, rows) of the tables that grow with events; a partitioned one's
    size is the sum of its partitions'."""
    # pg_partition_tree lists a partitioned relation and its partitions, and nothing for a plain one.
    sql = """
    SELECT c.relname, '',
           CASE WHEN c.relkind = 'p' THEN (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(c.oid))
                ELSE pg_total_relation_size(c.oid) END,
           CASE WHEN c.relkind = 'p' THEN (SELECT sum(cc.reltuples) FROM pg_partition_tree(c.oid) AS t
                                           JOIN pg_class AS cc ON cc.oid = t.relid WHERE cc.relkind = 'r')
                ELSE c.reltuples END
    FROM pg_class AS c WHERE c.relname = ANY(%(tables)s) AND c.relkind IN ('r', 'p')
    UNION ALL
    SELECT c.relname, i.relname,
           CASE WHEN i.relkind = 'I' THEN (SELECT sum(pg_relation_size(relid)) FROM pg_partition_tree(i.oid))
                ELSE pg_relation_size(i.oid) END,
           0
    FROM pg_class AS c JOIN pg_index AS x ON x.indrelid = c.oid JOIN pg_class AS i ON i.oid = x.indexrelid
    WHERE c.relname = ANY(%(tables)s) AND c.relkind IN ('r', 'p')
    ORDER BY 1, 2
    """
    tables = [
        "events_event",
        "events_messagekey",
        "campaigns_decision",
        "campaigns_send",
        "campaigns_providerevent",
        "campaigns_providereventkey",
        "events_contact",
    ]
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(sql, {"tables": tables}).fetchall()
    return [(str(a), str(b), int(c or 0), int(d or 0)) for a, b, c, d in rows]


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000_000, help="stored events to load")
    parser.add_argument("--days", type=int, default=60, help="days of history they span (under 90: nothing pruned)")
    parser.add_argument("--p3-seconds", type=float, default=20.0, help="P3's duration")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end (its name is printed)")
    return parser.parse_args(argv)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def scale_run(scale: Scale) -> None:
    run, history = scale.run, scale.history
    measure(scale, "empty")
    retention(scale, "empty")
    partitions_ensure(scale)  # day 0's partitions again, for the load
    run.say(f"loading {history.events:,} events over {history.days} days, newest first; {load_average()}")

    def recent(loaded: int) -> None:
        scale.note(f"the newest 8 days are in ({loaded:,} events)")
        dashboard(scale, "8 days")

    loaded, seconds = history_load(scale.url, history, recent_days=8, after_recent=recent, progress=run.say)
    scale.record("full", "load events/s", loaded / seconds)
    scale.note(
        f"loaded {loaded:,} events (with decisions, sends, provider events) in {seconds / 60:.1f} min = "
        f"{loaded / seconds:,.0f} events/s; {load_average()}"
    )
    started = time.perf_counter()
    with psycopg.connect(scale.url, autocommit=True) as connection:
        # What autovacuum would long since have done on tables this size (bench.dashboard does the same).
        connection.execute("VACUUM ANALYZE")
    scale.note(f"VACUUM ANALYZE after the load: {time.perf_counter() - started:.0f} s")
    measure(scale, "full")
    retention(scale, "full")


def main(argv: list[str] | None = None) -> int:
    args = arguments(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _terminate)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    log_dir = BASE_DIR / "var" / f"bench-scale-{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.scale " + " ".join(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    databases = Databases()
    monitor = Monitor().start()
    provider: ProviderServer | None = None
    scale: Scale | None = None
    failure = ""
    try:
        name = databases.create("scale")
        url = database_url(name)
        secret_key = secrets.token_urlsafe(32)
        os.environ["SECRET_KEY"] = secret_key
        os.environ["ALLOWED_HOSTS"] = "testserver"  # this process's Django (the Dashboard's test client)
        write_key = template_prepare(url)
        from django.contrib.auth.models import User

        User.objects.create_superuser("bench", "bench@example.com", "bench")
        profile = FULL.with_options(p3_seconds=args.p3_seconds)
        provider = ProviderServer.start(env=dict(os.environ), log_dir=log_dir, latency=profile.provider_latency)
        monitor.roots["provider"] = lambda: [provider.process.popen.pid] if provider else []
        run = Run(profile, databases, name, write_key, secret_key, provider, monitor, log_dir)
        scale = Scale(run, name, url, History(events=args.events, days=args.days))
        run.say(f"database {name}, logs in {log_dir.relative_to(BASE_DIR)}; {load_average()}")
        partitions_ensure(scale)
        scale_run(scale)
        sized = sizes(url)
    except KeyboardInterrupt as interrupt:
        failure, sized = f"interrupted ({interrupt})", []
    except Exception:
        failure, sized = traceback.format_exc(), []
        print(failure, file=sys.stderr)
    finally:
        monitor.stop()
        if provider is not None:
            provider.stop()
        if not args.keep:
            databases.drop_all()
        elif databases.created:
            print(f"bench.scale: kept database {databases.created[0]}")
    if scale is None:
        print(f"bench.scale: could not start: {failure}", file=sys.stderr)
        return 2
    path = report_write(
        Measure(scale.results, scale.notes, scale.run, sized),
        stamp=stamp,
        command=command,
        elapsed=time.monotonic() - started,
        failure=failure,
    )
    print(f"\nbench.scale: written to {path.relative_to(BASE_DIR)}")
    return 2 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
