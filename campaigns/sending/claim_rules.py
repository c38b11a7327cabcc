"""The rules, templates and campaign settings a claim reads, kept per process while the rules stamp holds.

Every claim (campaigns.sending.claiming) needs its sends' rules with their templates and translations,
the campaign settings and the rules' engagement conditions. Read per claim, that was five queries and
their model instances: a fifth of a claim's CPU (py-spy, `python -m bench.worker_cpu`). Like matching
(campaigns.matching.rules_cache), a claim now asks one question first — has the stamp the database's
triggers keep changed? — and reads again only what changed since or was never read: a rule edited in
Admin a moment before a claim is what that claim uses. Without the stamp row nothing is kept.

The instances are shared by the claims of a process and must be read only: a localized template is a
copy (campaigns.authoring.localized), never the cached one changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from campaigns.matching.conditions import ConditionData
from campaigns.matching.engagement_facts import engagement_conditions_load
from campaigns.matching.rules_cache import rules_stamp
from campaigns.models import CampaignSettings, Rule


@dataclass
class ClaimRules:
    """What the claims of one stamp read: the settings, and each rule read so far with its conditions."""

    stamp: int | None
    settings: CampaignSettings
    rules: dict[int, Rule] = field(default_factory=dict)
    # rule id → its engagement conditions (an empty tuple when it has none); same keys as `rules`.
    engagement_conditions: dict[int, tuple[ConditionData, ...]] = field(default_factory=dict)

    def engagement_of(self, rule_ids: Iterable[int]) -> dict[int, tuple[ConditionData, ...]]:
        return {rule_id: found for rule_id in set(rule_ids) if (found := self.engagement_conditions[rule_id])}


_kept: ClaimRules | None = None


def claim_rules(rule_ids: Iterable[int]) -> ClaimRules:
    """The settings and these rules (and those read before under the same stamp), as committed now."""
    global _kept
    stamp = rules_stamp()
    kept = _kept if stamp is not None and _kept is not None and _kept.stamp == stamp else None
    if kept is None:
        kept = ClaimRules(stamp=stamp, settings=CampaignSettings.current())
    missing = set(rule_ids) - kept.rules.keys()
    if missing:
        kept.rules.update(_rules_load(missing))
        found = engagement_conditions_load(missing)
        kept.engagement_conditions.update({rule_id: found.get(rule_id, ()) for rule_id in missing})
    _kept = kept if stamp is not None else None
    return kept


def _rules_load(rule_ids: set[int]) -> dict[int, Rule]:
    """The rules with their templates and translations, one instance per rule.

    A claim's sends share a few rules: joined to every send row they would be built (and their
    translations fetched) once per send, which cost more CPU than the rest of the claim.
    """
    # The message is built in the contact's language (campaigns.authoring.localized).
    rules = Rule.objects.select_related("template").prefetch_related("template__translations")
    return rules.in_bulk(rule_ids)
