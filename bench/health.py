"""How much /readyz and /metrics cost on a big database, and the plans of their queries.

On a PostgreSQL database of its own (bench.database), fills in bench.dashboard's history (sends
sent over 90 days, their events and decisions), then the worst case for these endpoints: a million
scheduled sends due in the future, a thousand unprocessed events, one overdue send, one send in
flight and a dispatcher heartbeat; VACUUM ANALYZE. Then it times each endpoint in-process (Django's
test client) and prints EXPLAIN ANALYZE of every query they make, and what the counters cost
the ingest's and the provider call's hot paths.

    python -m bench.health [--sends 200000] [--scheduled 1000000] [--runs 50]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.dashboard import populate
from bench.database import bench_database

BASE_DIR = Path(__file__).resolve().parent.parent
TOKEN = "bench-metrics-token"

WORST_CASE = """
INSERT INTO campaigns_send (rule_id, contact_id, triggered_at, dedupe_key, state, reason, due_at, attempts,
                            to_email, provider_message_id, last_error, latency_kind, created_at, updated_at)
SELECT i % 8 + 1, i % 100000 + 1, now(), 'pending-' || i, 'scheduled', '',
       now() + interval '1 hour' + i * interval '1 second', 0, '', '', '', '', now(), now()
FROM generate_series(1, {scheduled}) AS i;
INSERT INTO campaigns_send (rule_id, contact_id, triggered_at, dedupe_key, state, reason, due_at, attempts,
                            sending_started_at, to_email, provider_message_id, last_error, latency_kind,
                            created_at, updated_at)
VALUES (1, 1, now(), 'overdue', 'scheduled', '', now() - interval '5 seconds', 0, NULL, '', '', '', '', now(), now()),
       (1, 2, now(), 'in-flight', 'sending', '', now(), 1, now() - interval '2 seconds', '', '', '', '', now(), now());
INSERT INTO events_event (message_id, type, name, user_id, anonymous_id, properties, traits, context,
                          occurred_at, received_at, processing_error)
SELECT 'waiting-' || i, 'track', 'event_1', 'u1', '', '{{}}', '{{}}', '{{}}', now(), now() - interval '3 seconds', ''
FROM generate_series(1, 1000) AS i;
VACUUM ANALYZE;
"""


def worst_case_add(scheduled: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from campaigns.operations.heartbeats import dispatcher_beat, heartbeat_name

    with connection.cursor() as cursor:
        for statement in WORST_CASE.format(scheduled=scheduled).split(";\n"):
            if statement.strip():
                cursor.execute(statement)
    dispatcher_beat(name=heartbeat_name(), at=timezone.now())


def endpoint_time(path: str, runs: int) -> tuple[list[float], list[str]]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(headers={"Authorization": f"Bearer {TOKEN}"})
    assert client.get(path).status_code in (200, 503)  # warm-up: connection, imports
    timings = []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(path)
            timings.append(time.perf_counter() - started)
        assert response.status_code in (200, 503), response.content
    return timings, [q["sql"] for q in queries]


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return sql[:300] + "\n" + "\n".join(row[0] for row in cursor.fetchall())


def instrument_cost() -> list[str]:
    """CPU time the counters add to one ingest request and one provider call (no database)."""
    import timeit
    from collections import Counter

    from events.ingest import IngestResult
    from events.views import _ingest_count
    from triggermail.metrics import provider_call_observe

    single = IngestResult(accepted=1, duplicates=0, stored_by_type=Counter({"track": 1}))
    batch = IngestResult(accepted=100, duplicates=0, stored_by_type=Counter({"track": 80, "identify": 20}))
    cases = {
        "counting one /v1/track request": lambda: _ingest_count(single, [], {}, "track"),
        "counting one 100-message /v1/batch request": lambda: _ingest_count(batch, [], {}, None),
        "timing one provider call": lambda: provider_call_observe("sent", 0.1),
    }
    number = 20_000
    return [f"{name}: {timeit.timeit(case, number=number) / number * 1e6:.1f} µs" for name, case in cases.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=200_000, help="history: sends over the last 90 days")
    parser.add_argument("--scheduled", type=int, default=1_000_000, help="scheduled sends due in the future")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    os.environ.update(SECRET_KEY=secrets.token_urlsafe(32), ALLOWED_HOSTS="testserver", METRICS_TOKEN=TOKEN)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggermail.settings")
    lines = [f"TriggerMail health benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores"]
    with bench_database("postgres") as url:
        os.environ["DATABASE_URL"] = url
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        populate(args.sends)
        worst_case_add(args.scheduled)
        lines.append(f"command: python -m bench.health --sends {args.sends} --scheduled {args.scheduled}")
        plans = []
        for path in ("/readyz", "/metrics"):
            timings, queries = endpoint_time(path, args.runs)
            lines.append(
                f"{path}: median {statistics.median(timings) * 1000:.1f} ms, max {max(timings) * 1000:.1f} ms, "
                f"{len(queries)} queries, {args.runs} runs"
            )
            plans += [explain(sql) for sql in queries if sql.lstrip().upper().startswith("SELECT")]
        lines += instrument_cost()
    text = "\n".join(lines)
    print("\n\n".join(plans) + "\n\n" + text)
    out = BASE_DIR / "var" / f"bench-health-{datetime.now(UTC):%Y%m%d-%H%M%S}.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n\n".join(plans) + "\n\n" + text + "\n")
    print(f"\nwritten to {out.relative_to(BASE_DIR)}")


if __name__ == "__main__":
    main()
