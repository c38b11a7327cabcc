"""P3 and P4: how late emails reach the provider, on the full deployment (web + qcluster).

- P3: /v1/track calls for a no-delay rule at a steady 200 events/s (open loop, a new user with
  context.traits.email each); per event, provider received minus the moment its 200 arrived.
- P4: 1,000,000 scheduled sends due hours to days ahead are written straight into the table
  (with the 100,000 contacts they point at), then VACUUM ANALYZE; then events with past timestamps
  are posted through the API for a rule delayed by an hour, so that their sends fall due over the
  next ~20 s; per send, provider received minus its due_at. The seeded sends must stay unsent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis

from bench import payloads
from bench.context import Row, Run
from bench.database import query
from bench.deploy import Deployment
from bench.loadgen import OpenLoopResult, Target, open_loop, run_async
from bench.stages import stage_breakdown
from bench.stats import latency_summary, ms, percentile
from bench.sustained import p5_sustained
from bench.verify import check, drain_wait

SEED_SQL = """
INSERT INTO events_contact (user_id, email, timezone, locale, traits, unsubscribed_topics, created_at, updated_at)
SELECT 'seed-' || i, 'seed-' || i || '@bench.example', '', '', '{{}}', '[]', now(), now()
FROM generate_series(0, {contacts} - 1) AS i;

INSERT INTO campaigns_send (rule_id, contact_id, event_id, triggered_at, dedupe_key, state, reason, due_at, attempts,
                            to_email, provider_message_id, last_error, latency_kind, created_at, updated_at)
SELECT {rule}, c.id, NULL, now(), 'seed-' || i, 'scheduled', '',
       now() + interval '1 hour' + (i % 259200) * interval '1 second', 0, '', '', '', '', now(), now()
FROM generate_series(0, {pending} - 1) AS i
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM events_contact WHERE user_id LIKE 'seed-%') AS c
  ON c.n = i % {contacts}
"""


def _post(
    run: Run, target: Target, path: str, bodies: Iterator[tuple[Any, bytes]], *, rate: float, count: int
) -> OpenLoopResult:
    """Post on an open loop; remember every address posted for, whatever the answer."""
    result = run_async(open_loop(target, path, bodies, rate=rate, count=count))
    for sent in result.sent:
        users = sent.tag if isinstance(sent.tag, list) else [sent.tag]
        run.attempted.update(payloads.email_of(u) for u in users)
    return result


def _open_loop_line(result: OpenLoopResult) -> str:
    return (
        f"offered {result.target_rate:,.0f} requests/s, achieved {result.achieved_rate:,.1f}/s answered 200; "
        f"answers {result.statuses()}; generator start lag max {ms(result.start_lateness_max)}"
    )


# Issue #15: P3's goal, on the default configuration (ORM broker).
P3_TARGET = 0.150
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def p3_immediate(run: Run, deployment: Deployment, *, broker: str = "orm", prefix: str = "p3") -> None:
    """`prefix` names the users (and so the messageIds): runs on one database need one each (bench.scale)."""
    profile, url = run.profile, deployment.env["DATABASE_URL"]
    prefix, label = (prefix, "") if broker == "orm" else (f"{prefix}r", ", Redis broker")
    target = Target.from_url(deployment.base_url, run.write_key)
    # Warm-up: worker processes, templates and connections, before anything is timed.
    warm = _post(run, target, "/v1/track", payloads.singles(f"{prefix}w", event=payloads.NOW_EVENT), rate=50, count=50)
    drain_wait(run.provider.ledger, [s.tag for s in warm.accepted], timeout=30)
    start = run.monitor.mark()
    count = int(profile.p3_rate * profile.p3_seconds)
    bodies = payloads.singles(prefix, event=payloads.NOW_EVENT)
    result = _post(run, target, "/v1/track", bodies, rate=profile.p3_rate, count=count)
    acked = {s.tag: s.answered for s in result.accepted}
    waited = drain_wait(run.provider.ledger, acked, timeout=profile.p3_drain, label=f"P3 drain{label}")
    end = run.monitor.mark()
    phase = f"P3 {profile.p3_rate:.0f} events/s{label}"
    run.cpu_record(phase, start, end)
    run.queries_detail(f"P3{label}", start, end)
    first = run.provider.ledger.first_received()
    values = [first[a] - acked[u] for u in acked if (a := payloads.email_of(u)) in first]
    run.latencies[f"P3 accepted → provider received (no delay){label}"] = values
    met = "yes" if values and percentile(values, 99) <= P3_TARGET else "**no**"
    run.rows.append(
        Row(
            id="P3" if broker == "orm" else "P3R",
            measure=f"event accepted → provider received the request (its {profile.provider_latency * 1000:.0f} ms "
            f"answer not included), no-delay rule, steady {profile.p3_rate:.0f} events/s, {broker.upper()} broker",
            value=f"{latency_summary(values, len(acked))}; {result.achieved_rate:,.0f} of "
            f"{profile.p3_rate:,.0f} track calls/s acknowledged{run.noise(phase)}",
            target=f"p99 <= {P3_TARGET * 1000:.0f} ms" if broker == "orm" else "reported",
            met=met if broker == "orm" else "—",
        )
    )
    run.detail(
        f"P3{label}: {count:,} track calls over {profile.p3_seconds:.0f} s: {_open_loop_line(result)}; "
        f"{'drained' if len(values) == len(acked) else 'not drained'} {waited:.1f} s after the last post"
    )
    run.detail(f"P3{label} stages: " + stage_breakdown(url, acked=acked, received=first, prefix=prefix))
    users = [*acked, *(s.tag for s in warm.accepted)]
    run.checks.append(check(f"P3{label}", url=url, ledger=run.provider.ledger, users=users))


def p3_redis(run: Run) -> None:
    """P3 again with the Redis broker, on a queue of its own (tests and other runs share the Redis)."""
    name = f"tm-bench-{run.databases.run_id}-p3r"
    env = {"Q_BROKER": "redis", "REDIS_URL": REDIS_URL, "Q_CLUSTER_NAME": name}
    try:
        with run.deployment("p3r", env=env) as deployment:
            p3_immediate(run, deployment, broker="redis")
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"django_q:{name}*"):
            client.delete(key)


def pending_seed(run: Run, url: str) -> float:
    """Write the million far-future sends; return the seconds it took."""
    started = time.perf_counter()
    rule = query(url, "SELECT id FROM campaigns_rule WHERE trigger_event = %s", (payloads.SEEDED_EVENT,))[0][0]
    sql = SEED_SQL.format(contacts=run.profile.p4_contacts, pending=run.profile.p4_pending, rule=int(rule))
    with psycopg.connect(url, autocommit=True) as connection:
        with connection.transaction():
            # Rows made consistent by construction: skip the per-row foreign key triggers, as a
            # restore would. The indexes are maintained as for any insert.
            connection.execute("SET LOCAL session_replication_role = replica")
            for statement in sql.split(";\n\n"):
                connection.execute(statement)
        # What autovacuum would long since have done on a table this size.
        connection.execute("VACUUM ANALYZE campaigns_send")
        connection.execute("VACUUM ANALYZE events_contact")
    return time.perf_counter() - started


def delayed_bodies(count: int, *, lead: float, spread: float) -> list[tuple[list[str], bytes]]:
    """Batches of events whose hour-long delay ends `lead` to `lead + spread` seconds from now."""
    now = datetime.now(UTC)
    events, batches = [], []
    for i in range(count):
        due = now + timedelta(seconds=lead + spread * i / max(1, count - 1))
        occurred = due - timedelta(seconds=payloads.LATER_DELAY)
        events.append(payloads.track(f"p4-{i}", payloads.LATER_EVENT, timestamp=occurred))
    for start in range(0, count, 100):
        chunk = events[start : start + 100]
        batches.append(([e["userId"] for e in chunk], payloads.batch_body(chunk)))
    return batches


def p4_delayed(run: Run, deployment: Deployment) -> None:
    profile, url = run.profile, deployment.env["DATABASE_URL"]
    run.say(f"P4: seeding {profile.p4_pending:,} pending sends")
    seeded_in = pending_seed(run, url)
    target = Target.from_url(deployment.base_url, run.write_key)
    start = run.monitor.mark()
    bodies = delayed_bodies(profile.p4_sends, lead=profile.p4_lead, spread=profile.p4_spread)
    result = _post(run, target, "/v1/batch", iter(bodies), rate=20, count=len(bodies))
    acked = [u for s in result.accepted for u in s.tag]
    waited = drain_wait(
        run.provider.ledger, acked, timeout=profile.p4_lead + profile.p4_spread + profile.p4_drain, label="P4"
    )
    end = run.monitor.mark()
    run.cpu_record("P4 delayed sends", start, end)
    run.queries_detail("P4", start, end)
    due = {
        payloads.email_of(user): (float(due_at), bool(late))
        for user, due_at, late in query(
            url,
            "SELECT e.user_id, extract(epoch FROM s.due_at), s.created_at > s.due_at FROM campaigns_send AS s"
            " JOIN events_event AS e ON e.id = s.event_id WHERE e.message_id LIKE 'm-p4-%%'",
        )
    }
    first = run.provider.ledger.first_received()
    values = [first[a] - due[a][0] for a in due if a in first]
    run.latencies["P4 provider received - due time (delayed)"] = values
    met = "yes" if values and percentile(values, 99) <= 1.0 else "**no**"
    untouched = query(
        url, "SELECT count(*) FROM campaigns_send WHERE dedupe_key LIKE 'seed-%%' AND state = 'scheduled'"
    )
    run.rows.append(
        Row(
            id="P4",
            measure=f"delayed sends: provider received - due time, {profile.p4_pending:,} pending sends in table",
            value=latency_summary(values, len(acked)) + run.noise("P4 delayed sends"),
            target="p99 <= 1 s",
            met=met,
        )
    )
    run.detail(
        f"P4: {profile.p4_pending:,} pending sends seeded in {seeded_in:.1f} s (INSERT … SELECT generate_series, "
        f"then VACUUM ANALYZE); {len(acked):,} delayed events posted ({_open_loop_line(result)}), due "
        f"{profile.p4_lead:.0f}-{profile.p4_lead + profile.p4_spread:.0f} s after posting; "
        f"{sum(1 for d in due.values() if d[1])} sends were created after their due time (processing lag); "
        f"waited {waited:.1f} s; {untouched[0][0]:,} seeded sends still scheduled"
    )
    run.checks.append(check("P4", url=url, ledger=run.provider.ledger, users=acked))


def latency_phases(run: Run) -> None:
    run.say("P3, P4: latency on the full deployment (web + qcluster)")
    if run.profile.shared_deployment:
        # The quick run saves restarts: P3, P4 and P5 on the same processes and database, in turn.
        with run.deployment("latency") as deployment:
            if run.wants("P3"):
                p3_immediate(run, deployment)
            if run.wants("P4"):
                p4_delayed(run, deployment)
            if run.wants("P5") or run.wants("P6"):
                p5_sustained(run, deployment)
    else:
        # Each on fresh processes and a fresh database: a backlog P3 leaves behind must not delay P4's sends.
        if run.wants("P3"):
            with run.deployment("p3") as deployment:
                p3_immediate(run, deployment)
        if run.wants("P4"):
            with run.deployment("p4") as deployment:
                p4_delayed(run, deployment)
    if run.wants("P3R") and (run.profile.p3_redis or "P3R" in run.only):
        p3_redis(run)
