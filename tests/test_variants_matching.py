"""A/B variants in pure matching: which variant a contact gets, always the same, in the weights' shares."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta

from campaigns.matching.reasons import DecisionReason
from campaigns.matching.rules import ContactData, EventData, RuleData, rules_matching
from campaigns.matching.variants import VariantData, variant_assign

NOW = datetime.fromisoformat("2026-03-02T10:00:00+00:00")
AB_HOLDOUT = (VariantData("A", "Recovery", 45), VariantData("B", "Recovery, short", 45), VariantData("holdout", "", 10))


def rule(**fields: object) -> RuleData:
    return RuleData(id=7, name="recovery", trigger_event="cart_abandoned", template_name="Recovery", **fields)  # type: ignore[arg-type]


def event(user_id: str = "u1", id: int = 1) -> EventData:
    return EventData(id=id, name="cart_abandoned", user_id=user_id, properties={}, occurred_at=NOW)


def contact(user_id: str = "u1") -> ContactData:
    return ContactData(user_id=user_id, email=f"{user_id}@example.com")


def test_a_rule_without_variants_sends_its_own_template_with_no_variant():
    [decision] = rules_matching(event(), contact(), [rule()], NOW)
    assert (decision.reason, decision.variant) == (DecisionReason.SCHEDULED, "")


def test_a_contact_gets_the_same_variant_for_every_event_and_every_retry():
    # Repeat events (new ids), the same event matched again (a retried batch), the same rule read
    # again from the database (a new RuleData, variants in another order): one variant.
    ab = rule(variants=AB_HOLDOUT)
    reordered = rule(variants=tuple(reversed(AB_HOLDOUT)))
    for user_id in [f"user-{n}" for n in range(200)]:
        seen = {
            rules_matching(event(user_id, id=event_id), contact(user_id), [candidate], NOW)[0].variant
            for event_id in (1, 2, 3, 1)
            for candidate in (ab, reordered)
        }
        assert len(seen) == 1, user_id


def test_the_variant_depends_on_the_rule_too():
    # Another rule with the same weights splits the same people another way: tests do not line up.
    people = [f"user-{n}" for n in range(1000)]
    first = [variant_assign(1, p, AB_HOLDOUT) for p in people]
    second = [variant_assign(2, p, AB_HOLDOUT) for p in people]
    assert sum(a != b for a, b in zip(first, second, strict=True)) > 300


def test_ten_thousand_contacts_land_in_the_weights_shares():
    people = [f"user-{n}" for n in range(10_000)]
    counts = Counter(variant_assign(42, p, AB_HOLDOUT).name for p in people)  # type: ignore[union-attr]
    total = sum(v.weight for v in AB_HOLDOUT)
    for variant in AB_HOLDOUT:
        share = variant.weight / total
        expected = 10_000 * share
        # Five binomial standard deviations: a fair hash fails this about once in 1.7 million tries.
        tolerance = 5 * math.sqrt(10_000 * share * (1 - share))
        assert abs(counts[variant.name] - expected) < tolerance, (variant.name, counts)


def test_a_90_10_split_with_a_holdout_holds_out_about_a_tenth():
    variants = (VariantData("email", "Recovery", 90), VariantData("control", "", 10))
    held = sum(variant_assign(3, f"id-{n}", variants).holdout for n in range(10_000))  # type: ignore[union-attr]
    assert abs(held - 1000) < 5 * math.sqrt(10_000 * 0.1 * 0.9)


def test_raising_one_weight_moves_only_some_contacts():
    people = [f"user-{n}" for n in range(5000)]
    before = {p: variant_assign(9, p, AB_HOLDOUT).name for p in people}  # type: ignore[union-attr]
    changed = (AB_HOLDOUT[0], AB_HOLDOUT[1], VariantData("holdout", "", 20))
    after = {p: variant_assign(9, p, changed).name for p in people}  # type: ignore[union-attr]
    moved = sum(before[p] != after[p] for p in people)
    # The boundaries move from 45 % and 90 % to 40.9 % and 81.8 %: about 12.3 % of contacts change
    # variant, everyone else keeps theirs (five standard deviations either way).
    share = (0.45 - 45 / 110) + (0.90 - 90 / 110)
    assert abs(moved - 5000 * share) < 5 * math.sqrt(5000 * share * (1 - share))


def test_the_holdout_gets_a_skip_that_keeps_its_due_time_and_variant():
    holdout_only_b = (VariantData("A", "Recovery", 1), VariantData("holdout", "", 10_000))
    delayed = rule(variants=holdout_only_b, delay=timedelta(hours=1))
    # Find someone the hash puts in the holdout (nearly everyone, at these weights).
    user_id = next(f"u{n}" for n in range(100) if variant_assign(7, f"u{n}", holdout_only_b).holdout)  # type: ignore[union-attr]
    [decision] = rules_matching(event(user_id), contact(user_id), [delayed], NOW)
    assert decision.reason == DecisionReason.HOLDOUT
    assert not decision.scheduled
    assert (decision.variant, decision.due_at) == ("holdout", NOW + timedelta(hours=1))
    assert "holdout: sent nothing" in decision.detail


def test_the_holdout_is_decided_after_every_other_check():
    # Someone who would not be emailed anyway (no address, a false condition) is not in the control group.
    no_address = ContactData(user_id="u1", email="")
    [decision] = rules_matching(event(), no_address, [rule(variants=AB_HOLDOUT)], NOW)
    assert (decision.reason, decision.variant) == (DecisionReason.NO_EMAIL, "")
