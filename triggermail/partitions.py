"""Time-partitioned history on PostgreSQL: daily range partitions of events, decisions and provider events.

Each partitioned table has one partition per UTC day, named `<table>_pYYYYMMDD`, and a DEFAULT
partition `<table>_default` that takes any row whose time has no partition yet, so an insert is
never refused for its time. The worker (campaigns.sending.dispatcher's sweeps) and `migrate` create
the days ahead (PARTITION_AHEAD_DAYS); retention drops whole days (campaigns.sending.retention).

Decisions are partitioned by their event's received_at (Decision.event_received_at), so an event's
decisions live in the partition of the same day and go with it, as the CASCADE said: the day's
decisions are dropped with the day's events, never before.

Everything here is a no-op on other databases (SQLite keeps plain tables).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import OperationalError, connection, transaction

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionedTable:
    table: str
    key: str  # the partition key column: a time the application sets, never the client


EVENTS = PartitionedTable("events_event", "received_at")
DECISIONS = PartitionedTable("campaigns_decision", "event_received_at")
PROVIDER_EVENTS = PartitionedTable("campaigns_providerevent", "received_at")
TABLES = (EVENTS, DECISIONS, PROVIDER_EVENTS)
PARTITIONED_TABLES: tuple[str, ...] = tuple(t.table for t in TABLES)

# Two workers creating the same day at once: the second waits, then finds it made.
_LOCK = 0x7472_6967_7061_7274  # "trigpart"
# Dropping a partition locks its parent for a moment, creating one its DEFAULT partition; waiting
# longer than this behind a long transaction would hold every insert queued behind us. The next
# call tries again (days are made PARTITION_AHEAD_DAYS ahead, so there is time).
LOCK_TIMEOUT = "2s"


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def default_partition_name(table: str) -> str:
    return f"{table}_default"


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


def partitioned(table: str) -> bool:
    """Whether `table` is a partitioned root here (False on SQLite, and before the migration)."""
    if not _postgresql():
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def _days(table: str) -> dict[date, str]:
    """The day partitions of `table` that exist: day → name (the DEFAULT partition is not one)."""
    prefix = f"{table}_p"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [table],
        )
        names = [name for (name,) in cursor.fetchall()]
    days = {}
    for name in names:
        suffix = name.removeprefix(prefix)
        if name.startswith(prefix) and len(suffix) == 8 and suffix.isdigit():
            days[datetime.strptime(suffix, "%Y%m%d").replace(tzinfo=UTC).date()] = name
    return days


def partitions_ensure_ahead() -> list[str]:
    """Create today's and the next PARTITION_AHEAD_DAYS days' partitions (the worker, `migrate`)."""
    return partitions_ensure(until=datetime.now(UTC) + timedelta(days=settings.PARTITION_AHEAD_DAYS))


def partitions_ensure(*, until: datetime, since: datetime | None = None) -> list[str]:
    """Create the missing day partitions from `since` (default: today, UTC) to the day of `until`.

    Returns the names created. Rows that waited in the DEFAULT partition for a day now created move
    into it. Safe to call from several processes at once.
    """
    if not _postgresql():
        return []
    first = _day(since) if since is not None else _day(datetime.now(UTC))
    last = _day(until)
    created: list[str] = []
    for spec in TABLES:
        if not partitioned(spec.table):
            continue
        existing = _days(spec.table)
        day = first
        while day <= last:
            try:
                if day not in existing and _partition_create(spec, day):
                    created.append(partition_name(spec.table, day))
            except OperationalError as error:  # lock_timeout: a long transaction holds the table
                logger.warning("partition %s not created this time: %s", partition_name(spec.table, day), error)
            day += timedelta(days=1)
    if created:
        logger.info("created partitions %s", ", ".join(created))
    return created


def _partition_create(spec: PartitionedTable, day: date) -> bool:
    """Create one day's partition of `spec`; False when another process made it first.

    Built as a table of its own and then attached: ATTACH PARTITION takes only a SHARE UPDATE
    EXCLUSIVE lock on the parent, so ingest and matching go on meanwhile (CREATE TABLE … PARTITION OF
    would lock them out). The DEFAULT partition is locked for that moment: rows of the day that
    waited there move into the new partition, and none can arrive there in between.
    """
    name, default = partition_name(spec.table, day), default_partition_name(spec.table)
    low, high = _start(day), _start(day + timedelta(days=1))
    q = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # Deferred foreign key checks still pending (when the caller's transaction wrote rows) would
        # make PostgreSQL refuse the ALTER TABLE: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
        if day in _days(spec.table):
            return False
        cursor.execute(f"CREATE TABLE {q(name)} (LIKE {q(spec.table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(f"LOCK TABLE {q(default)} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {q(default)} WHERE {q(spec.key)} >= %s AND {q(spec.key)} < %s "
            f"RETURNING *) INSERT INTO {q(name)} SELECT * FROM moved",
            [low, high],
        )
        moved = cursor.rowcount
        # Literal bounds: DDL takes no parameters under server-side binding.
        cursor.execute(
            f"ALTER TABLE {q(spec.table)} ATTACH PARTITION {q(name)} "
            f"FOR VALUES FROM ('{low.isoformat()}') TO ('{high.isoformat()}')"
        )
    if moved:
        logger.warning("moved %d rows of %s from %s into the new partition %s", moved, day, default, name)
    return True


def partitions_drop_before(*, before: datetime) -> list[str]:
    """Drop every day partition whose whole day is before `before`; return the names dropped.

    An events day is dropped with the decisions of its events (the same day of campaigns_decision),
    and only once every event in it is processed: an unprocessed event is work still to do, and its
    day waits for the next call. Dropping a day touches no row outside it, so its cost does not grow
    with the rows dropped: sends and decisions keep the ids of events whose day is gone (the columns
    have no foreign key; ids are never reused, and the ORM's joins read a gone event as None).
    Suppressions, which Admin links to their provider event, are the one exception: the few that
    point into a dropped day of provider events are set NULL. DEFAULT partitions are never dropped.
    """
    if not _postgresql():
        return []
    dropped: list[str] = []
    for spec, drop in ((EVENTS, _events_day_drop), (PROVIDER_EVENTS, _provider_events_day_drop)):
        if not partitioned(spec.table):
            continue
        for day, name in sorted(_days(spec.table).items()):
            if _start(day + timedelta(days=1)) > before:
                break
            try:
                dropped += drop(day, name)
            except OperationalError as error:  # lock_timeout: a long transaction holds the table
                logger.warning("partition %s not dropped this time: %s", name, error)
    if dropped:
        logger.info("dropped partitions %s", ", ".join(dropped))
    return dropped


def _events_day_drop(day: date, name: str) -> list[str]:
    q = connection.ops.quote_name
    decisions = _days(DECISIONS.table).get(day) if partitioned(DECISIONS.table) else None
    with transaction.atomic(), connection.cursor() as cursor:
        _drop_prepare(cursor, name)
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {q(name)} WHERE processed_at IS NULL)")
        (unprocessed,) = cursor.fetchone()
        if unprocessed:
            logger.warning("partition %s still holds unprocessed events: kept until they are processed", name)
            return []
        names = []
        if decisions:  # the day's events' decisions: CASCADE
            cursor.execute(f"DROP TABLE {q(decisions)}")
            names.append(decisions)
        cursor.execute(f"DROP TABLE {q(name)}")
        names.append(name)
    return names


def _drop_prepare(cursor: CursorWrapper, name: str) -> None:
    """Ready a transaction to drop the day partition `name`: a bounded lock wait, and the day locked."""
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    # Deferred foreign key checks still pending (when the caller's transaction wrote rows) would
    # make PostgreSQL refuse the DROP: run them now.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    # Lock the day first: no row of it can be claimed, marked or pointed at while we look and drop.
    cursor.execute(f"LOCK TABLE {connection.ops.quote_name(name)} IN SHARE MODE")


def _provider_events_day_drop(day: date, name: str) -> list[str]:
    q = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        _drop_prepare(cursor, name)
        # Provider event ids grow with received_at, so the day's ids lie between its smallest and
        # largest (read from its primary key): the suppressions' index is searched over that range
        # only. The IN keeps it exact at the day's edges, where a neighbouring day's ids can interleave.
        cursor.execute(
            "UPDATE campaigns_suppression SET provider_event_id = NULL "
            f"WHERE provider_event_id BETWEEN (SELECT min(id) FROM {q(name)}) AND (SELECT max(id) FROM {q(name)}) "
            f"AND provider_event_id IN (SELECT id FROM {q(name)})"
        )
        cursor.execute(f"DROP TABLE {q(name)}")
    return [name]
