"""The dashboard's numbers: per rule, over a period, the funnel from event to conversion, why events
were skipped, how long emails took to reach the provider, conversion rate and revenue.

Computed by the database, however many sends there are, in two grouped queries that join nothing:
decisions per rule with conditional counts, and sent sends per (rule, latency kind, latency in ms)
with the funnel's counts, which are added up per rule here and give the latency percentiles and
histogram (see `campaigns.reporting.latency`). Nothing loops over sends in Python: the second query returns at
most one row per rule, kind and millisecond. What the page needs of provider events and events is
kept on the send row when it is learned (`Send.delivered_at`, `opened_at`, `clicked_at`,
`latency_ms`, `latency_kind`), and the periods are index ranges (`send_dashboard_period`,
`decision_created_rule`).

Which period a number belongs to: triggered, scheduled and skipped count the decisions made in the
period; sent and everything after it (delivered, opened, clicked, converted, revenue, latency) count
the emails sent in it, so the conversion rate compares like with like. Delivered, opened and clicked
are sends with at least one provider event of that type (a send opened five times counts once),
kept after the provider events themselves are pruned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Q, Sum

from campaigns.models import Decision, Rule, Send
from campaigns.reporting.latency import (
    DELAYED,
    IMMEDIATE,
    Bucket,
    Distribution,
    Percentiles,
    latency_histogram,
    latency_percentiles,
)

SKIP_REASONS = [reason for reason in Decision.Reason if reason != Decision.Reason.SCHEDULED]
FUNNEL_STEPS = ("triggered", "scheduled", "sent", "delivered", "opened", "clicked", "converted")
SEND_COUNTS = ("sent", "delivered", "opened", "clicked", "converted")


@dataclass(frozen=True)
class RulePerformance:
    rule: Rule | None  # None: all rules together
    triggered: int = 0  # decisions made for the rule (scheduled or skipped)
    scheduled: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # Decision.Reason value → count, if any
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    converted: int = 0
    revenue: Decimal = Decimal("0.00")
    immediate: Percentiles = field(default_factory=Percentiles.empty)
    delayed: Percentiles = field(default_factory=Percentiles.empty)

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.sent if self.sent else None

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def funnel(self) -> list[tuple[str, int]]:
        return [(step, getattr(self, step)) for step in FUNNEL_STEPS]


@dataclass(frozen=True)
class Dashboard:
    start: datetime
    end: datetime
    rows: list[RulePerformance]
    totals: RulePerformance
    latency_histogram: list[Bucket]


def dashboard_compute(*, start: datetime, end: datetime) -> Dashboard:
    # One snapshot for all the figures, on the database the reads go to (the replica in its scope).
    alias = router.db_for_read(Send)
    with transaction.atomic(using=alias):
        _postgres_tune_for_reporting(connections[alias])
        decided = _decisions_by_rule(start=start, end=end)
        sent_in_period = Send.objects.filter(state=Send.State.SENT, sent_at__gte=start, sent_at__lt=end)
        sends, distribution = _sends_by_rule(sent_in_period)
        rules = list(Rule.objects.select_related("template").order_by("name"))
    latency, latency_overall = latency_percentiles(distribution)
    rows = []
    for rule in rules:
        rows.append(
            _row(
                rule,
                decided.get(rule.pk, {}),
                sends.get(rule.pk, {}),
                immediate=latency.get((rule.pk, IMMEDIATE)),
                delayed=latency.get((rule.pk, DELAYED)),
            )
        )
    return Dashboard(
        start=start,
        end=end,
        rows=rows,
        totals=_totals(rows, latency_overall),
        latency_histogram=latency_histogram(distribution),
    )


def _postgres_tune_for_reporting(connection: BaseDatabaseWrapper) -> None:
    """Settings for this transaction's few large aggregates, on PostgreSQL.

    JIT compilation is for long analytic queries: the planner's cost estimates for these (hundreds
    of thousands of rows) switch it on, and compiling then takes longer than running the query
    (measured: 1.6 s of JIT for a 70 ms query). More work_mem keeps the hash table of the sends'
    query (one entry per rule, kind and millisecond: about 10 MB for a million sends) in memory.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)")


def _decisions_by_rule(*, start: datetime, end: datetime) -> dict[int, dict[str, int]]:
    # Grouped by outcome and reason and added up here, rather than one conditional count per reason:
    # a million decisions are hashed once instead of each being tested against every reason.
    rows = (
        Decision.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("rule_id", "outcome", "reason")
        .annotate(decisions=Count("id"))
        .order_by()
    )
    per_rule: dict[int, dict[str, int]] = {}
    for row in rows:
        counts = per_rule.setdefault(row["rule_id"], {"triggered": 0, "scheduled": 0})
        counts["triggered"] += row["decisions"]
        if row["outcome"] == Decision.Outcome.SCHEDULED:
            counts["scheduled"] += row["decisions"]
        if row["reason"] != Decision.Reason.SCHEDULED:
            key = f"reason_{row['reason']}"
            counts[key] = counts.get(key, 0) + row["decisions"]
    return per_rule


def _sends_by_rule(sent_in_period: Any) -> tuple[dict[int, dict[str, Any]], Distribution]:
    """The funnel from sent on, per rule, and how many sends took each latency, per rule and kind."""
    converted = Q(converted_at__isnull=False)
    rows = (
        sent_in_period.values("rule_id", "latency_kind", "latency_ms")
        .annotate(
            sent=Count("id"),
            delivered=Count("delivered_at"),
            opened=Count("opened_at"),
            clicked=Count("clicked_at"),
            converted=Count("id", filter=converted),
            revenue=Sum("revenue", filter=converted),
        )
        .order_by()
    )
    per_rule: dict[int, dict[str, Any]] = {}
    distribution: dict[tuple[int, str], dict[int, int]] = {}
    for row in rows:
        totals = per_rule.setdefault(row["rule_id"], dict.fromkeys(SEND_COUNTS, 0) | {"revenue": Decimal("0.00")})
        for name in SEND_COUNTS:
            totals[name] += row[name]
        totals["revenue"] += row["revenue"] or 0
        if row["latency_ms"] is not None and row["latency_kind"]:
            distribution.setdefault((row["rule_id"], row["latency_kind"]), {})[row["latency_ms"]] = row["sent"]
    return per_rule, distribution


def _row(
    rule: Rule,
    decisions: Mapping[str, Any],
    sends: Mapping[str, Any],
    *,
    immediate: Percentiles | None,
    delayed: Percentiles | None,
) -> RulePerformance:
    skipped = {reason.value: decisions.get(f"reason_{reason}", 0) for reason in SKIP_REASONS}
    return RulePerformance(
        rule=rule,
        triggered=decisions.get("triggered", 0),
        scheduled=decisions.get("scheduled", 0),
        skipped={reason: count for reason, count in skipped.items() if count},
        sent=sends.get("sent", 0),
        delivered=sends.get("delivered", 0),
        opened=sends.get("opened", 0),
        clicked=sends.get("clicked", 0),
        converted=sends.get("converted", 0),
        revenue=sends.get("revenue") or Decimal("0.00"),
        immediate=immediate or Percentiles.empty(),
        delayed=delayed or Percentiles.empty(),
    )


def _totals(rows: list[RulePerformance], latency: Mapping[str, Percentiles]) -> RulePerformance:
    skipped: dict[str, int] = {}
    for row in rows:
        for reason, count in row.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
    return RulePerformance(
        rule=None,
        skipped=skipped,
        revenue=sum((row.revenue for row in rows), Decimal("0.00")),
        immediate=latency[IMMEDIATE],
        delayed=latency[DELAYED],
        **{step: sum(getattr(row, step) for row in rows) for step in FUNNEL_STEPS},
    )
