"""Which A/B variant of a rule a contact gets: a pure, stable function of (rule, contact).

The contact's point is a hash of the rule's id and the contact's user id, read as a fraction in
[0, 1); the variants, in name order, each own a run of that interval as long as their share of the
weights. The same contact always lands on the same point, so a repeat event, a retried batch or
another worker never flips the variant. Changing the weights moves the boundaries between runs, and
only the contacts whose points a boundary passes over change variant: making the holdout of an
A 45 / B 45 / holdout 10 test 20 moves about 12 % of contacts (those between 40.9 % and 45 % go from
A to B, those between 81.8 % and 90 % from B to the holdout); everyone else keeps theirs. Adding,
removing or renaming a variant moves boundaries the same way, which is why the README advises
ending a test (promote) rather than reshaping it while it runs.
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


def variant_point(rule_id: int, user_id: str) -> int:
    """The contact's point, a 64-bit number: uniform, and the same in every process and release."""
    # sha256 rather than hash(): Python's hash of a string changes with every process.
    # surrogatepass: a user id with a lone surrogate still has bytes to hash.
    digest = hashlib.sha256(f"{rule_id}:{user_id}".encode(errors="surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def variant_assign(rule_id: int, user_id: str, variants: Sequence[VariantData]) -> VariantData | None:
    """The contact's variant of the rule; None when the rule has no variants (it sends its template)."""
    total = sum(variant.weight for variant in variants)
    if total <= 0:
        return None
    # point / 2^64 < (weights so far) / total, in integers: exact, with no rounding at the boundaries.
    scaled = variant_point(rule_id, user_id) * total
    bound = 0
    for variant in sorted(variants, key=lambda v: v.name):
        bound += variant.weight
        if scaled < bound << 64:
            return variant
    raise AssertionError("a point below 2^64 falls in some variant")


def variant_describe(variant: VariantData, variants: Sequence[VariantData]) -> str:
    """E.g. "variant B (template 'Cart recovery, short'; weight 45 of 100)"."""
    total = sum(v.weight for v in variants)
    what = "holdout: sent nothing" if variant.holdout else f"template {variant.template_name!r}"
    return f"variant {variant.name} ({what}; weight {variant.weight} of {total})"
