"""Which A/B variant of a rule a contact gets: a pure, stable function of (rule, contact).

The contact's point is a hash of the rule's id and the contact's user id, spread over the sum of
the weights; the variants, in name order, each own a run of points as long as their weight. The
same contact always lands on the same point, so a repeat event, a retried batch or another worker
never flips the variant. Changing the weights moves the boundaries between runs: only the contacts
whose points the moved boundary passes over change variant (making B 60 instead of 50 in an A/B
50/50 test moves the contacts between points 50 and 60 of 110 — and those of A whose points shift
with the total — to another variant). Renaming or adding a variant does the same, which is why
the README advises ending a test (promote) rather than reshaping it while it runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class VariantData:
    name: str
    template_name: str  # "" for a holdout: it sends nothing
    weight: int

    @property
    def holdout(self) -> bool:
        return not self.template_name


def variant_point(rule_id: int, user_id: str, total: int) -> int:
    """The contact's point in [0, total): uniform, and the same in every process and release."""
    # sha256 rather than hash(): Python's hash of a string changes with every process.
    # surrogatepass: a user id with a lone surrogate still has bytes to hash.
    digest = hashlib.sha256(f"{rule_id}:{user_id}".encode(errors="surrogatepass")).digest()
    # 64 bits modulo a total of at most a few thousand: the bias is below one in 10^15.
    return int.from_bytes(digest[:8], "big") % total


def variant_assign(rule_id: int, user_id: str, variants: Sequence[VariantData]) -> VariantData | None:
    """The contact's variant of the rule; None when the rule has no variants (it sends its template)."""
    total = sum(variant.weight for variant in variants)
    if total <= 0:
        return None
    point = variant_point(rule_id, user_id, total)
    for variant in sorted(variants, key=lambda v: v.name):
        if point < variant.weight:
            return variant
        point -= variant.weight
    raise AssertionError("a point below the total falls in some variant")


def variant_describe(variant: VariantData, variants: Sequence[VariantData]) -> str:
    """E.g. "variant B (template 'Cart recovery, short'; weight 45 of 100)"."""
    total = sum(v.weight for v in variants)
    what = "holdout: sent nothing" if variant.holdout else f"template {variant.template_name!r}"
    return f"variant {variant.name} ({what}; weight {variant.weight} of {total})"
