"""Engagement conditions: a step that depends on what the contact did with an earlier rule's email.

A condition with source `engagement` names an earlier rule (by name) and asks whether the
contact's most recent email from that rule — of any trigger — was sent, opened, clicked or
converted, or the negation. "Most recent" counts the sends that may have reached the person
(sending, sent, unknown, abandoned) and the one still waiting (scheduled); cancelled, suppressed,
failed and not-accepted sends never reached anyone and are not counted. A negation is the plain
negation: a contact who never got the earlier email has also not opened it.

The facts come from the webhook-fed columns on the send (opened_at, clicked_at, converted_at). At
matching an earlier email still waiting to go out (the day-0 email scheduled in the same batch)
cannot have been opened yet, so the condition is judged as it stands and judged again when the
email falls due (campaigns.sending.checks): an open that arrives during the delay counts then.
Pure: no database access here (campaigns.matching.engagement_facts reads the facts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

SOURCE = "engagement"
# Operator → (the fact it reads, whether it is negated).
OPERATORS: dict[str, tuple[str, bool]] = {
    "sent": ("sent", False),
    "not_sent": ("sent", True),
    "opened": ("opened", False),
    "not_opened": ("opened", True),
    "clicked": ("clicked", False),
    "not_clicked": ("clicked", True),
    "converted": ("converted", False),
    "not_converted": ("converted", True),
}
_WORDS = {
    "sent": "was sent",
    "not_sent": "was not sent",
    "opened": "was opened",
    "not_opened": "was not opened",
    "clicked": "was clicked",
    "not_clicked": "was not clicked",
    "converted": "converted",
    "not_converted": "did not convert",
}


@dataclass(frozen=True)
class EngagementFact:
    """The contact's most recent email from one rule, as far as engagement goes."""

    send_id: int | None = None
    # Still scheduled: nothing can have happened to it yet.
    pending: bool = False
    sent_at: datetime | None = None
    opened_at: datetime | None = None
    clicked_at: datetime | None = None
    converted_at: datetime | None = None

    def happened(self, what: str) -> datetime | None:
        """When the fact became true (`sent`, `opened`, `clicked`, `converted`), or None."""
        if self.pending:
            return None
        moment: datetime | None = getattr(self, f"{what}_at")
        return moment


# A contact with no counted email from the rule.
NEVER = EngagementFact()


def engagement_describe(rule_name: str, operator: str) -> str:
    return f"the email of rule {rule_name!r} {_WORDS.get(operator, operator)}"


def engagement_holds(operator: str, fact: EngagementFact | None) -> bool:
    what, negated = OPERATORS[operator]
    happened = (fact or NEVER).happened(what) is not None
    return happened != negated


def engagement_of(facts: Mapping[int, EngagementFact], rule_id: int | None) -> EngagementFact:
    # A condition naming a rule that no longer exists reads as "never sent".
    return facts.get(rule_id, NEVER) if rule_id is not None else NEVER
