"""How each rule performed over a period: triggered, scheduled, sent, converted, revenue.

Computed by the database: one aggregate query over decisions and one over sends, each grouped by
rule, however many sends there are. A send counts in the period it was sent, and its conversion
with it, so the conversion rate compares like with like.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum

from campaigns.models import Decision, Rule, Send


@dataclass(frozen=True)
class RulePerformance:
    rule: Rule
    triggered: int  # decisions made for the rule (scheduled or skipped)
    scheduled: int
    sent: int
    converted: int
    revenue: Decimal

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.sent if self.sent else None


def rules_performance(*, since: datetime) -> list[RulePerformance]:
    decided: dict[int, Mapping[str, Any]] = {
        row["rule_id"]: row
        for row in Decision.objects.filter(created_at__gte=since)
        .values("rule_id")
        .annotate(triggered=Count("id"), scheduled=Count("id", filter=Q(outcome=Decision.Outcome.SCHEDULED)))
    }
    converted = Q(converted_at__isnull=False)
    delivered: dict[int, Mapping[str, Any]] = {
        row["rule_id"]: row
        for row in Send.objects.filter(state=Send.State.SENT, sent_at__gte=since)
        .values("rule_id")
        .annotate(sent=Count("id"), converted=Count("id", filter=converted), revenue=Sum("revenue", filter=converted))
    }
    report = []
    for rule in Rule.objects.select_related("template").order_by("name"):
        decisions, sends = decided.get(rule.pk, {}), delivered.get(rule.pk, {})
        report.append(
            RulePerformance(
                rule=rule,
                triggered=decisions.get("triggered", 0),
                scheduled=decisions.get("scheduled", 0),
                sent=sends.get("sent", 0),
                converted=sends.get("converted", 0),
                revenue=sends.get("revenue") or Decimal("0.00"),
            )
        )
    return report
