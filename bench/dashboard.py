"""How fast the Dashboard renders with a million sends.

On a PostgreSQL database of its own (created and dropped like bench.latency's), fills in 100,000
contacts, 1,200,000 events spread over the last 90 days, a decision for each (one in six skipped),
1,000,000 sends (a quarter of the rules delayed by an hour or a day; about 95% sent), and the
provider events a real SendGrid account would report for them (delivered ~95%, opened ~30%, some
twice, clicked ~5%, bounced ~2%), with conversions and revenue, and the columns the Dashboard reads
(`Send.delivered_at`, `opened_at`, `clicked_at`, `latency_ms`, `latency_kind`). The rows are written
by `INSERT … SELECT generate_series` in SQL, then VACUUMed and ANALYZEd. Then it renders the Dashboard for each
period in-process with Django's test client, logged in as a superuser, and reports median and max.

    python -m bench.dashboard [--sends 1000000] [--runs 5]

Every send's event is inside the 90 days (EVENT_RETENTION_DAYS), so the 90-day view aggregates all
of them: the hardest case for the page.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.database import bench_database

BASE_DIR = Path(__file__).resolve().parent.parent
PERIODS = ("24h", "7d", "30d", "90d")
RULES = 8  # rules 1..8; the last quarter of them are delayed

POPULATE = """
SELECT setseed(0.42);

INSERT INTO events_contact (user_id, email, timezone, locale, traits, unsubscribed_topics, created_at, updated_at)
SELECT 'u' || i, 'u' || i || '@example.com', '', '', '{{}}', '[]', now(), now()
FROM generate_series(1, {contacts}) AS i;

-- Event i is received at a steady pace over the last 90 days; one in six is skipped by its rule.
INSERT INTO events_event (message_id, type, name, user_id, anonymous_id, properties, traits, context,
                          occurred_at, received_at, processed_at)
SELECT 'm-' || i, 'track', 'event_' || (i % {rules} + 1), 'u' || (i % {contacts} + 1), '', '{{}}', '{{}}', '{{}}',
       t, t, t + interval '40 milliseconds'
FROM (SELECT i, now() - interval '90 days' * (1 - i::float / {events}) - interval '2 minutes' AS t
      FROM generate_series(1, {events}) AS i) AS e;

-- latency_ms and latency_kind as campaigns.reporting.latency.sends_latency_record sets them when a send becomes sent.
INSERT INTO campaigns_send (rule_id, contact_id, event_id, triggered_at, dedupe_key, state, reason, due_at,
                            attempts, sent_at, sending_started_at, to_email, provider_message_id, last_error,
                            converted_at, revenue, latency_ms, latency_kind, created_at, updated_at)
SELECT rule_id, contact_id, id, received_at, 'k-' || id,
       CASE WHEN due_at > now() THEN 'scheduled' WHEN r < 0.04 THEN 'cancelled' WHEN r < 0.05 THEN 'failed'
            ELSE 'sent' END,
       '', due_at, 1,
       CASE WHEN due_at <= now() AND r >= 0.05 THEN due_at + took END,
       CASE WHEN due_at <= now() AND r >= 0.05 THEN due_at + took * 0.7 END,
       'u' || contact_id || '@example.com', '', '',
       CASE WHEN r >= 0.05 AND r < 0.08 AND due_at <= now() THEN due_at + interval '2 hours' END,
       CASE WHEN r >= 0.05 AND r < 0.07 AND due_at <= now() THEN round((r * 3000)::numeric, 2) END,
       CASE WHEN due_at <= now() AND r >= 0.05
            THEN round(1000 * extract(epoch FROM due_at + took - CASE WHEN due_at <= received_at THEN received_at
                                                                       ELSE due_at END)) END,
       CASE WHEN due_at <= now() AND r >= 0.05
            THEN CASE WHEN due_at <= received_at THEN 'immediate' ELSE 'delayed' END ELSE '' END,
       received_at, received_at
FROM (SELECT e.id, e.received_at, e.id % {rules} + 1 AS rule_id, e.id % {contacts} + 1 AS contact_id, random() AS r,
             e.received_at + CASE WHEN e.id % {rules} + 1 > {immediate_rules}
                                  THEN interval '1 hour' * (1 + 23 * (e.id % 2)) ELSE interval '0' END AS due_at,
             interval '1 second' * (0.08 + 1.5 * power(random(), 3)) AS took
      FROM events_event AS e WHERE e.id % 6 <> 0) AS s;

INSERT INTO campaigns_decision (event_id, event_received_at, rule_id, contact_id, outcome, reason, detail, due_at,
                                send_id, created_at)
SELECT e.id, e.received_at, e.id % {rules} + 1, e.id % {contacts} + 1,
       CASE WHEN s.id IS NULL THEN 'skipped' ELSE 'scheduled' END,
       CASE WHEN s.id IS NOT NULL THEN 'scheduled'
            ELSE (ARRAY['cooldown', 'condition_false', 'duplicate', 'capped', 'no_email'])[e.id % 5 + 1] END,
       '', s.due_at, s.id, e.received_at + interval '40 milliseconds'
FROM events_event AS e LEFT JOIN campaigns_send AS s ON s.event_id = e.id;

INSERT INTO campaigns_providerevent (event_id, event_type, send_id, key, provider_message_id, recipient,
                                     reject_reason, description, occurred_at, received_at, payload)
SELECT 'pe-' || kind || '-' || id, split_part(kind, '#', 1), id, 'k-' || id, '', '', '', '', at, at, '{{}}'
FROM (SELECT s.id, s.sent_at + interval '10 seconds' AS at, random() AS r FROM campaigns_send AS s
      WHERE s.state = 'sent') AS s,
     LATERAL (VALUES ('delivered', r < 0.95), ('bounced', r >= 0.98), ('opened', r < 0.30),
                     ('opened#2', r < 0.10), ('clicked', r < 0.05)) AS steps(kind, happened)
WHERE happened;

-- The first delivery, open and click of each send, as the webhook receiver keeps them.
UPDATE campaigns_send AS s
SET delivered_at = p.delivered, opened_at = p.opened, clicked_at = p.clicked
FROM (SELECT send_id, min(occurred_at) FILTER (WHERE event_type = 'delivered') AS delivered,
             min(occurred_at) FILTER (WHERE event_type = 'opened') AS opened,
             min(occurred_at) FILTER (WHERE event_type = 'clicked') AS clicked
      FROM campaigns_providerevent WHERE event_type IN ('delivered', 'opened', 'clicked') GROUP BY send_id) AS p
WHERE p.send_id = s.id;

-- VACUUM as autovacuum would have long since done on a real table: rows written in one go are not
-- yet marked all-visible, and until they are an index-only scan still reads the table.
VACUUM ANALYZE;
"""


def populate(sends: int) -> None:
    from django.db import connection

    from campaigns.models import Rule, Template

    template = Template.objects.create(name="Bench", subject="Hi", text_body="Hi")
    immediate_rules = RULES * 3 // 4
    for number in range(1, RULES + 1):
        Rule.objects.create(
            pk=number,
            name=f"rule {number}",
            trigger_event=f"event_{number}",
            template=template,
            goal_event="order_completed",
        )
    sql = POPULATE.format(contacts=100_000, events=sends * 6 // 5, rules=RULES, immediate_rules=immediate_rules)
    with connection.cursor() as cursor:
        for statement in sql.split(";\n"):
            if statement.strip():
                cursor.execute(statement)


def counts() -> dict[str, int]:
    from campaigns.models import Decision, ProviderEvent, Send
    from events.models import Event

    return {
        "events": Event.objects.count(),
        "decisions": Decision.objects.count(),
        "sends": Send.objects.count(),
        "sent": Send.objects.filter(state="sent").count(),
        "provider events": ProviderEvent.objects.count(),
    }


def dashboard_time(period: str, runs: int) -> tuple[list[float], int]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(User.objects.get(username="bench"))
    url = f"/admin/campaigns/performance/?period={period}"
    assert client.get(url).status_code == 200  # warm-up: connection, templates, caches
    timings = []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            timings.append(time.perf_counter() - started)
        assert response.status_code == 200
    return timings, len(queries)


def explain(period: str) -> str:
    """EXPLAIN ANALYZE of the Dashboard's queries for one period, with the settings it runs them with."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(User.objects.get(username="bench"))
    with CaptureQueriesContext(connection) as queries:
        client.get(f"/admin/campaigns/performance/?period={period}")
    plans = []
    for query in queries:
        if "campaigns_send" not in query["sql"] and "campaigns_decision" not in query["sql"]:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)")
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            plans.append(query["sql"][:300] + "\n" + "\n".join(row[0] for row in cursor.fetchall()))
    return "\n\n".join(plans)


def report(table: list[tuple[str, list[float], int]], rows: dict[str, int], args: argparse.Namespace) -> str:
    lines = [
        f"TriggerMail dashboard benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, PostgreSQL",
        f"command: python -m bench.dashboard --sends {args.sends} --runs {args.runs}",
        "rows: " + ", ".join(f"{name} {count:,}" for name, count in rows.items()),
        "",
        "| sends in table | period | median | max | queries |",
        "|---|---|---|---|---|",
    ]
    for period, timings, queries in table:
        lines.append(
            f"| {rows['sends']:,} | {period} | {statistics.median(timings) * 1000:.0f} ms | "
            f"{max(timings) * 1000:.0f} ms | {queries} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--explain", metavar="PERIOD", help="also print EXPLAIN ANALYZE of the queries for PERIOD")
    args = parser.parse_args()
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(32)
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggermail.settings")
    with bench_database("postgres") as url:
        os.environ["DATABASE_URL"] = url
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        from django.contrib.auth.models import User

        User.objects.create_superuser("bench", "bench@example.com", "bench")
        started = time.perf_counter()
        populate(args.sends)
        print(f"populated in {time.perf_counter() - started:.0f} s")
        rows = counts()
        table = [(period, *dashboard_time(period, args.runs)) for period in PERIODS]
        if args.explain:
            print(explain(args.explain))
    text = report(table, rows, args)
    print(text)
    out = BASE_DIR / "var" / f"bench-dashboard-{datetime.now(UTC):%Y%m%d-%H%M%S}.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    print(f"\nwritten to {out.relative_to(BASE_DIR)}")


if __name__ == "__main__":
    main()
