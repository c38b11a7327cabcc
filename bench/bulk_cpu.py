"""`python -m bench.bulk_cpu`: this process's CPU per row for triggermail.bulk's statements, and per
timestamp read.

Matching inserts its sends with `insert_new_returning` and its decisions with `insert_all`, and
delivery records sends with `update_from_values`, 50 rows a statement as a delivery task's slice;
this times the three, and Django's `bulk_create` of the same decisions beside `insert_all`, on a
fresh PostgreSQL database (CPU time of this process only: preparing the values, writing the
statement's parameters, reading the answer), best of --repeat passes of 20 statements each. Then
2,000 timestamptz values a query are read through Django's own loader and through
triggermail.pg_timestamps' (the query's cost included).

    python -m bench.bulk_cpu [--rows 50] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bench.database import prepared_database

STATEMENTS = 20


def _best(work: Callable[[int], None], *, rows: int, repeat: int) -> float:
    """The least CPU seconds per row over `repeat` passes of STATEMENTS calls of work(statement)."""
    passes = []
    for n in range(repeat):
        started = time.process_time()
        for statement in range(STATEMENTS):
            work(n * STATEMENTS + statement)
        passes.append((time.process_time() - started) / (STATEMENTS * rows))
    return min(passes)


def _measure(rows: int, repeat: int) -> None:
    from campaigns.models import Decision, Rule, Send
    from events.models import Contact, Event
    from triggermail.bulk import insert_all, insert_new_returning, update_from_values

    rule = Rule.objects.order_by("pk").first()
    assert rule is not None, "the benchmark's rules exist"
    contact = Contact.objects.create(user_id="bulk-cpu", email="bulk-cpu@bench.example")
    when = datetime.now(UTC)

    def insert(statement: int) -> None:
        sends = [
            Send(rule=rule, contact=contact, triggered_at=when, due_at=when + timedelta(hours=1),
                 dedupe_key=f"bulk-cpu-{statement}-{i}", reason="matched", to_email="bulk-cpu@bench.example")
            for i in range(rows)
        ]  # fmt: skip
        insert_new_returning(sends, returning=["pk"])

    inserted = _best(insert, rows=rows, repeat=repeat)
    ids = list(Send.objects.order_by("pk").values_list("pk", flat=True)[:rows])
    fields = ["state", "reason", "sent_at", "provider_message_id", "latency_ms", "latency_kind"]

    def update(statement: int) -> None:
        values = [(pk, "sent", "", when, f"message-{statement}-{pk}", 12, "immediate") for pk in ids]
        update_from_values(Send, values, fields=fields)

    updated = _best(update, rows=rows, repeat=repeat)
    print(f"insert_new_returning, {rows} Send rows a statement: {inserted * 1e6:.1f} µs CPU per row")
    print(f"update_from_values, {rows} Send rows a statement: {updated * 1e6:.1f} µs CPU per row")
    # Each pass decides for events of its own: (event, rule) is unique.
    events = [
        Event.objects.create(type="track", name="bulk_cpu", message_id=f"bulk-cpu-{n}", user_id="bulk-cpu",
                             occurred_at=when, received_at=when)
        for n in range(2 * repeat * STATEMENTS * rows)
    ]  # fmt: skip

    def decisions(statement: int) -> list[Decision]:
        return [
            Decision(event=event, rule=rule, contact=contact, outcome="skipped", reason="cooldown", detail="cooldown")
            for event in events[statement * rows : (statement + 1) * rows]
        ]

    Writer = Callable[[list[Decision]], object]
    writers: list[tuple[str, Writer]] = [
        ("Decision.objects.bulk_create", Decision.objects.bulk_create),
        ("insert_all", insert_all),
    ]
    for first, (name, write) in enumerate(writers):
        offset = first * repeat * STATEMENTS

        def insert_decisions(statement: int, write: Writer = write, at: int = offset) -> None:
            write(decisions(at + statement))

        cost = _best(insert_decisions, rows=rows, repeat=repeat)
        print(f"{name}, {rows} Decision rows a statement: {cost * 1e6:.1f} µs CPU per row")


def _timestamps(repeat: int) -> None:
    from django.db import connection
    from django.db.backends.postgresql.psycopg_any import register_tzloader

    from triggermail.pg_timestamps import UtcTimestamptzLoader

    values = 2000
    sql = f"SELECT now() + i * interval '1.000001 second' FROM generate_series(1, {values}) AS i"
    connection.ensure_connection()
    raw = connection.connection
    loaders = {"Django's loader": None, "triggermail.pg_timestamps": UtcTimestamptzLoader}
    for name, loader in loaders.items():
        if loader is None:
            register_tzloader(UTC, raw)
        else:
            raw.adapters.register_loader("timestamptz", loader)

        def read(_: int) -> None:
            with raw.cursor() as cursor:  # a cursor takes the connection's loaders when it is made
                cursor.execute(sql)
                cursor.fetchall()

        cost = _best(read, rows=values, repeat=repeat)
        print(f"{name}: {cost * 1e6:.2f} µs CPU per timestamptz value read ({values:,} a query)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50, help="rows per statement")
    parser.add_argument("--repeat", type=int, default=7, help="passes of 20 statements; the best is printed")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
    with prepared_database("bulk"):
        _measure(args.rows, args.repeat)
        _timestamps(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
