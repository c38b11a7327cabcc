"""The Dashboard's A/B tests: per rule with variants, the funnel of each variant over a period and
how its conversion rate differs from the control's, with a confidence interval and a p-value.

The control is the holdout when the rule has one (people sent nothing: the test says whether the
email works at all), else the first variant by name. A variant's people are its emails sent in the
period; the holdout's are its decisions whose due time (when the email would have gone out) falls in
it, converted the same way (campaigns.matching.conversions). Two grouped queries, as for the rest of
the Dashboard; the statistics come from statsmodels (see the README's Libraries section for why).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum

from campaigns.models import Decision, Rule, RuleVariant, Send

# A difference is called significant below this p-value; the interval is the matching 95 %.
ALPHA = 0.05
# What a variant's template reads as once the variant is gone (the test ended).
GONE = "(variant since removed)"
FUNNEL = ("exposed", "delivered", "opened", "clicked", "converted")


@dataclass(frozen=True)
class Comparison:
    """A variant's conversion rate minus the control's, as a share (0.02 = 2 percentage points)."""

    difference: float
    low: float  # the 95 % confidence interval of the difference (Newcomb's hybrid score interval)
    high: float
    p_value: float | None  # the score test's; None when it is undefined (both rates 0 % or both 100 %)

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA


@dataclass(frozen=True)
class VariantResult:
    name: str
    template: str  # "" for a holdout
    exposed: int = 0  # emails sent, or for the holdout: people held out
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    converted: int = 0
    revenue: Decimal = Decimal("0.00")
    comparison: Comparison | None = None

    @property
    def holdout(self) -> bool:
        return not self.template

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.exposed if self.exposed else None


@dataclass(frozen=True)
class RuleTest:
    rule: Rule
    control: str
    results: list[VariantResult]
    # The variants the rule has now; empty once the test was ended by promoting one.
    configured: frozenset[str]

    @property
    def running(self) -> bool:
        return bool(self.configured)


def proportions_compare(
    converted: int, exposed: int, control_converted: int, control_exposed: int
) -> Comparison | None:
    """The difference of two conversion rates with its 95 % interval and p-value; None without people on a side."""
    if not exposed or not control_exposed:
        return None
    # Imported here: statsmodels (and pandas under it) takes most of a second to import, which the
    # ingest and the workers, which never draw a Dashboard, should not pay.
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    counts = (converted, exposed, control_converted, control_exposed)
    with warnings.catch_warnings():
        # Both rates 0 % (or 100 %) leave no variance: statsmodels warns and answers NaN, said as None.
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = confint_proportions_2indep(*counts, method="newcomb", compare="diff", alpha=ALPHA)
        p_value = float(test_proportions_2indep(*counts, method="score", compare="diff").pvalue)
    difference = converted / exposed - control_converted / control_exposed
    return Comparison(difference, float(low), float(high), None if math.isnan(p_value) else p_value)


def variant_tests(*, start: datetime, end: datetime) -> list[RuleTest]:
    """Every rule that runs a test now or sent variants in the period, by rule name."""
    figures: dict[int, dict[str, dict[str, Any]]] = {}
    sent = Send.objects.filter(state=Send.State.SENT, sent_at__gte=start, sent_at__lt=end).exclude(variant="")
    converted = Q(converted_at__isnull=False)
    for row in (
        sent.values("rule_id", "variant")
        .annotate(exposed=Count("id"), delivered=Count("delivered_at"), opened=Count("opened_at"),
                  clicked=Count("clicked_at"), converted=Count("id", filter=converted),
                  revenue=Sum("revenue", filter=converted))
        .order_by()
    ):  # fmt: skip
        figures.setdefault(row["rule_id"], {})[row["variant"]] = {**row, "template": GONE}
    held = Decision.objects.filter(reason=Decision.Reason.HOLDOUT, due_at__gte=start, due_at__lt=end)
    for held_row in (
        held.values("rule_id", "variant")
        .annotate(exposed=Count("id"), converted=Count("id", filter=converted),
                  revenue=Sum("revenue", filter=converted))
        .order_by()
    ):  # fmt: skip
        figures.setdefault(held_row["rule_id"], {})[held_row["variant"]] = {**held_row, "template": ""}
    configured: dict[int, dict[str, str]] = {}
    for variant in RuleVariant.objects.select_related("template"):
        configured.setdefault(variant.rule_id, {})[variant.name] = variant.template.name if variant.template else ""
    rules = Rule.objects.filter(pk__in=set(figures) | set(configured)).order_by("name")
    return [_rule_test(rule, figures.get(rule.pk, {}), configured.get(rule.pk, {})) for rule in rules]


def _rule_test(rule: Rule, figures: dict[str, dict[str, Any]], configured: dict[str, str]) -> RuleTest:
    names = sorted(set(figures) | set(configured))
    # The template of a variant gone since (the test was ended) is unknown; a holdout is known by its rows.
    templates = {name: configured.get(name, figures.get(name, {}).get("template", GONE)) for name in names}
    holdouts = [name for name in names if not templates[name]]
    control = holdouts[0] if holdouts else names[0]
    base = figures.get(control, {})
    results = []
    for name in names:
        row = figures.get(name, {})
        counts = {step: int(row.get(step) or 0) for step in FUNNEL}
        comparison = None
        if name != control:
            comparison = proportions_compare(
                counts["converted"], counts["exposed"], int(base.get("converted") or 0), int(base.get("exposed") or 0)
            )
        results.append(VariantResult(name, templates[name], revenue=row.get("revenue") or Decimal("0.00"),
                                     comparison=comparison, **counts))  # fmt: skip
    return RuleTest(rule=rule, control=control, results=results, configured=frozenset(configured))
