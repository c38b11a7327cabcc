"""The chaos run's A/B test: the browse reminder runs variants A and B and a holdout.

Which variant each user must get is computed here from the documented rule (a sha256 of
"<rule id>:<user id>", its first 8 bytes read as a fraction of 2^64, laid over the weights in name
order: see the README's "A/B variants") — written again rather than imported from the app, so a bug
in the app's assignment cannot hide by agreeing with itself. The verdict then checks that every
email of the rule went out with the user's own variant (the send's variant and the subject the
provider received), and that no holdout user got one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.sendgrid_server import Accepted

# name → (template suffix, subject prefix, weight); the holdout has no template.
VARIANTS: dict[str, tuple[str | None, str, int]] = {
    "A": ("", "Still thinking about", 45),
    "B": (" B", "Back for", 45),
    "holdout": (None, "", 10),
}


def browse_variants(browse: str) -> list[dict[str, Any]]:
    """The rule's variants in the campaign file; A uses the rule's own template, B its " B" sibling."""
    return [
        {"name": name, "template": None if suffix is None else browse + suffix, "weight": weight}
        for name, (suffix, _, weight) in VARIANTS.items()
    ]


def variant_of(rule_id: int, user_id: str) -> str:
    """The variant the README's rule assigns this user for this rule."""
    point = int.from_bytes(hashlib.sha256(f"{rule_id}:{user_id}".encode()).digest()[:8], "big")
    total = sum(weight for _, _, weight in VARIANTS.values())
    bound = 0
    for name in sorted(VARIANTS):
        bound += VARIANTS[name][2]
        if point * total < bound << 64:
            return name
    raise AssertionError("unreachable")


def variants_problems(
    rule_id: int, sends: list[tuple[int, str, str]], subjects: dict[str, list[str]]
) -> tuple[list[str], dict[str, int]]:
    """Users who got another variant than theirs, or an email while held out; and emails per variant.

    `sends` are (send id, user id, the send's variant) of the rule; `subjects` the subjects the
    provider accepted, by send id.
    """
    problems: list[str] = []
    per_variant: dict[str, int] = dict.fromkeys(VARIANTS, 0)
    for send_id, user_id, variant in sends:
        mine = variant_of(rule_id, user_id)
        if variant != mine:
            problems.append(f"{user_id}: send {send_id} is variant {variant!r}, assigned {mine!r}")
        for subject in subjects.get(str(send_id), []):
            per_variant[mine] += 1
            if mine == "holdout" or not subject.startswith(VARIANTS[mine][1]):
                problems.append(f"{user_id} ({mine}): accepted {subject!r}")
    return problems, per_variant


def browse_rule_id(browse: str = "Chaos browse reminder") -> int:
    # Imported here: the workload imports this module before Django is set up.
    from campaigns.models import Rule

    return Rule.objects.get(name=browse).pk


def variants_section(v: Any, ledger: list[Accepted]) -> None:
    """The browse reminder's A/B test: every email of the user's own variant, none to the holdout.

    `v` is chaos.report's Verdict (not imported: the report imports this module).
    """
    from campaigns.models import Decision, Send

    rule_id = browse_rule_id()
    sends = list(Send.objects.filter(rule_id=rule_id).values_list("pk", "contact__user_id", "variant"))
    subjects: dict[str, list[str]] = defaultdict(list)
    for accepted in ledger:
        subjects[accepted.send_id].append(accepted.subject)
    problems, per_variant = variants_problems(rule_id, sends, subjects)
    v.section("A/B test (browse reminder)")
    for name, count in per_variant.items():
        v.row(f"emails accepted, variant {name}", count)
    holdouts = Decision.objects.filter(rule_id=rule_id, reason=Decision.Reason.HOLDOUT).count()
    v.row("holdout decisions (no email)", holdouts)
    v.must_be_zero("emails of another variant than assigned, or to the holdout", len(problems), problems)
