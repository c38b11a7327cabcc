"""A/B variants of a rule: which template each share of its contacts gets, or none (the holdout).

A rule without variants sends its own template, as always. With variants, each contact is assigned
one of them by a hash of (rule, contact) into the weights (campaigns.matching.variants), and the
variant's name is stored on the decision and the send, so reports and the trace can say who got
what even after the test ends and its variants are gone.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from campaigns.models.rules import Rule, Template

# The largest weight, and the largest sum of a rule's weights (campaigns.authoring.variants checks the
# sum), so a share can be as fine as 0.01 %.
WEIGHT_LARGEST = 10_000


class RuleVariant(models.Model):
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=40, help_text="A short label people read in reports, e.g. A, B or control.")
    # PROTECT: a template a running test sends cannot disappear under it.
    template = models.ForeignKey(
        Template,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="variants",
        help_text="Empty: a holdout — the contacts it gets are sent nothing (the control group).",
    )
    weight = models.PositiveSmallIntegerField(
        default=50,
        validators=[MinValueValidator(1), MaxValueValidator(WEIGHT_LARGEST)],
        help_text="Its share is its weight divided by the sum of the rule's weights.",
    )

    class Meta:
        ordering = ["rule", "name"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "name"], name="rule_variant_name_unique"),
            models.CheckConstraint(condition=Q(weight__gte=1), name="rule_variant_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.template.name if self.template is not None else 'holdout'}, weight {self.weight})"
