"""bench.scale's history: millions of stored events, their decisions, sends and webhook events, fast.

One `INSERT … SELECT … FROM generate_series` per calendar day (UTC), written as chained
data-modifying CTEs, so that each day's events, the sends one in ten of them caused, a decision for
every event and the provider events of the sent emails go in as one statement on the server: no
row crosses the network. Nothing the product relies on is turned off (indexes, constraints, foreign
keys, triggers and the WAL all do their work); rows are as the product writes them, with a small
but realistic payload (the properties and SDK context of a track call).

Days are loaded newest first, so the caller can measure after the first `recent_days` (a database
holding a week of history) as well as after all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench import payloads

# The event names the history is made of; one in ten events is the no-delay rule's trigger.
NAMES = (
    "page_viewed",
    "product_viewed",
    "product_viewed",
    "cart_updated",
    "search",
    "page_viewed",
    "checkout_started",
    "page_viewed",
    "order_completed",
    payloads.NOW_EVENT,
)
PROPERTIES = '{"plan": "pro", "value": 42.5, "currency": "EUR", "items": 3}'
CONTEXT = '{"library": {"name": "analytics-python", "version": "2.4.0"}, "ip": "203.0.113.9"}'
USER_PREFIX = "scale-u"

CONTACTS_SQL = """
INSERT INTO events_contact (user_id, email, timezone, locale, traits, unsubscribed_topics, created_at, updated_at)
SELECT %(prefix)s || k, %(prefix)s || k || '@bench.example', '', '', '{}', '[]', %(start)s, %(start)s
FROM generate_series(0, %(contacts)s - 1) AS k
"""

# Event i of n is received at start + span * i / n; its messageId is a UUID, as analytics SDKs make them
# (random, so the dedup index is written all over, as in production). One in ten (id % 10 = 0) caused a
# send by the no-delay rule (about 95% sent, as bench.dashboard's mix); every event has one decision.
# Provider events: delivered for ~95% of the sent emails, opened for ~30%. Columns the Dashboard reads
# are set as the product sets them.
DAY_SQL = """
WITH ev AS (
  INSERT INTO events_event (message_id, type, name, user_id, anonymous_id, properties, traits, context,
                            occurred_at, received_at, processed_at, source_id)
  SELECT md5('ld-' || i)::uuid::text, 'track', (%(names)s::text[])[i %% 10 + 1], %(prefix)s || (i %% %(contacts)s), '',
         %(properties)s::jsonb, '{}', %(context)s::jsonb, t - interval '1 second', t,
         t + interval '40 milliseconds', %(source)s
  FROM (SELECT i, %(start)s::timestamptz + %(span)s::interval * (i::float8 / %(total)s) AS t
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS i) AS g
  RETURNING id, received_at, user_id
),
x AS (
  SELECT ev.id, ev.received_at, %(contact_base)s + substr(ev.user_id, %(cut)s)::bigint AS contact_id,
         random() AS r, interval '1 second' * (0.08 + 1.5 * power(random(), 3)) AS took
  FROM ev
),
s AS (
  INSERT INTO campaigns_send (rule_id, contact_id, event_id, triggered_at, dedupe_key, state, reason, due_at,
                              attempts, sent_at, sending_started_at, to_email, provider_message_id, last_error,
                              latency_ms, latency_kind, delivered_at, opened_at, created_at, updated_at)
  SELECT %(send_rule)s, contact_id, id, received_at, 'k-' || id,
         CASE WHEN r < 0.04 THEN 'cancelled' WHEN r < 0.05 THEN 'failed' ELSE 'sent' END,
         '', received_at, 1,
         CASE WHEN r >= 0.05 THEN received_at + took END,
         CASE WHEN r >= 0.05 THEN received_at + took * 0.7 END,
         %(prefix)s || (contact_id - %(contact_base)s) || '@bench.example', '', '',
         CASE WHEN r >= 0.05 THEN round(1000 * extract(epoch FROM took)) END,
         CASE WHEN r >= 0.05 THEN 'immediate' ELSE '' END,
         CASE WHEN r >= 0.05 AND r < 0.95 THEN received_at + took + interval '10 seconds' END,
         CASE WHEN r >= 0.05 AND r < 0.35 THEN received_at + took + interval '20 minutes' END,
         received_at, received_at
  FROM x WHERE id %% 10 = 0
  RETURNING id, event_id, state, sent_at, dedupe_key
),
d AS (
  INSERT INTO campaigns_decision (event_id, rule_id, contact_id, outcome, reason, detail, due_at, send_id,
                                  created_at /*KEY*/)
  SELECT x.id, CASE WHEN s.id IS NULL THEN %(skip_rule)s ELSE %(send_rule)s END, x.contact_id,
         CASE WHEN s.id IS NULL THEN 'skipped' ELSE 'scheduled' END,
         CASE WHEN s.id IS NOT NULL THEN 'scheduled'
              ELSE (ARRAY['cooldown', 'condition_false', 'duplicate', 'capped', 'no_email'])[x.id %% 5 + 1] END,
         '', CASE WHEN s.id IS NOT NULL THEN x.received_at END, s.id, x.received_at + interval '40 milliseconds' /*KEY*/
  FROM x LEFT JOIN s ON s.event_id = x.id
)
INSERT INTO campaigns_providerevent (event_id, event_type, send_id, key, provider_message_id, recipient,
                                     reject_reason, description, occurred_at, received_at, payload)
SELECT 'pe-' || kind || '-' || s.id, kind, s.id, s.dedupe_key, '', '', '', '', at, at, '{}'
FROM s, LATERAL (VALUES ('delivered', s.sent_at + interval '10 seconds', s.id %% 20 <> 0),
                        ('opened', s.sent_at + interval '20 minutes', s.id %% 10 < 3)) AS p(kind, at, happened)
WHERE s.state = 'sent' AND happened
"""


@dataclass
class History:
    """The shape of the loaded history: `events` spread evenly from midnight UTC `days` days ago to now."""

    events: int
    days: int
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def start(self) -> datetime:
        today = self.now.replace(hour=0, minute=0, second=0, microsecond=0)
        return today - timedelta(days=self.days)

    @property
    def end(self) -> datetime:
        # A little before now: nothing loaded is newer than what the phases post.
        return self.now - timedelta(minutes=5)

    @property
    def contacts(self) -> int:
        return max(1, self.events // 20)

    def day(self, k: int) -> tuple[datetime, datetime]:
        """Day k's bounds (0: the oldest, `days`: today so far)."""
        return self.start + timedelta(days=k), self.start + timedelta(days=k + 1)

    def indices(self, k: int) -> tuple[int, int]:
        """The event numbers [lo, hi) received during day k."""
        span = (self.end - self.start).total_seconds()

        def at(moment: datetime) -> int:
            seconds = (min(moment, self.end) - self.start).total_seconds()
            return min(self.events, max(0, -(-int(self.events * seconds) // int(span))))

        lo, hi = self.day(k)
        return at(lo), at(hi)


def _day_sql(connection: psycopg.Connection[Any]) -> str:
    """DAY_SQL, with the decision's copy of its event's received_at where the schema has one (the
    partition key of campaigns_decision, triggermail.partitions)."""
    row = connection.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'campaigns_decision'"
        " AND column_name = 'event_received_at'"
    ).fetchone()
    if row is None:
        return DAY_SQL.replace("/*KEY*/", "")
    return DAY_SQL.replace("created_at /*KEY*/", "created_at, event_received_at").replace(
        "'40 milliseconds' /*KEY*/", "'40 milliseconds', x.received_at"
    )


def _one(connection: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
    row = connection.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def history_load(
    url: str,
    history: History,
    *,
    recent_days: int,
    after_recent: Callable[[int], None] | None = None,
    progress: Callable[[str], None] = print,
) -> tuple[int, float]:
    """Load the history into the migrated, seeded database at `url`; return (events loaded, seconds).

    `after_recent(events so far)` is called once the newest `recent_days` days are in (and analyzed).
    """
    started = time.perf_counter()
    paused = 0.0  # time spent in after_recent, which is not loading
    loaded = 0
    with psycopg.connect(url, autocommit=True) as connection:
        source = _one(connection, "SELECT id FROM events_writekey WHERE name = 'bench'")
        rules: dict[str, int] = dict(connection.execute("SELECT trigger_event, id FROM campaigns_rule").fetchall())
        connection.execute(CONTACTS_SQL, {"prefix": USER_PREFIX, "contacts": history.contacts, "start": history.start})
        base = _one(connection, "SELECT min(id) FROM events_contact WHERE user_id LIKE %s", (f"{USER_PREFIX}%",))
        params: dict[str, Any] = {
            "names": list(NAMES),
            "prefix": USER_PREFIX,
            "cut": len(USER_PREFIX) + 1,
            "contacts": history.contacts,
            "contact_base": base,
            "properties": PROPERTIES,
            "context": CONTEXT,
            "source": source,
            "start": history.start,
            "span": history.end - history.start,
            "total": history.events,
            "send_rule": rules[payloads.NOW_EVENT],
            "skip_rule": rules[payloads.LATER_EVENT],
        }
        day_sql = _day_sql(connection)
        for number, k in enumerate(range(history.days, -1, -1), start=1):
            lo, hi = history.indices(k)
            if hi > lo:
                day_started = time.perf_counter()
                connection.execute(day_sql, {**params, "lo": lo, "hi": hi})
                loaded += hi - lo
                elapsed = time.perf_counter() - started - paused
                progress(
                    f"loaded {history.day(k)[0]:%Y-%m-%d}: {hi - lo:,} events in "
                    f"{time.perf_counter() - day_started:.1f} s; {loaded:,} of {history.events:,} "
                    f"({loaded / elapsed:,.0f} events/s so far)"
                )
            if number == recent_days and after_recent is not None:
                pause = time.perf_counter()
                connection.execute("ANALYZE")
                after_recent(loaded)
                paused += time.perf_counter() - pause
    return loaded, time.perf_counter() - started - paused
