"""The rules and campaign settings in force, read again only when they changed.

Matching needs every rule (with its template and conditions) and the campaign settings for each
batch of events; reading them is several queries and many objects, per batch. A marketer's change
must still be live on the next event, so the processor asks one cheap question per batch — has
the stamp that the database's triggers keep (campaigns.models.RulesStamp) changed? — and re-reads
only when it has. Without the stamp row (a database whose triggers this project does not install,
or a test database that was flushed) nothing is cached. Claims keep what they read by the same stamp
(campaigns.sending.claim_rules).
"""

from __future__ import annotations

from campaigns.matching.rules import RuleData
from campaigns.matching.selectors import rules_current
from campaigns.models import CampaignSettings, RulesStamp

_cached: tuple[int, CampaignSettings, list[RuleData]] | None = None


def rules_stamp() -> int | None:
    """The stamp as committed now; None without the row (then nothing may be cached).

    Read before what it guards: a change committed in between makes the next reader read again."""
    return RulesStamp.objects.filter(pk=1).values_list("stamp", flat=True).first()


def rules_in_force() -> tuple[CampaignSettings, list[RuleData]]:
    """(campaign settings, every rule), as committed now."""
    global _cached
    stamp = rules_stamp()
    if stamp is not None and _cached is not None and _cached[0] == stamp:
        return _cached[1], _cached[2]
    defaults = CampaignSettings.current()
    rules = rules_current(defaults)
    _cached = (stamp, defaults, rules) if stamp is not None else None
    return defaults, rules
