"""Reading engagement facts (campaigns.matching.engagement) for a batch: one query for all contacts.

Matching (campaigns.matching.selectors) and the send-time checks (campaigns.sending.claim_facts) both
read them here, so a condition means the same at both moments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from campaigns.matching.conditions import ConditionData
from campaigns.matching.engagement import SOURCE, EngagementFact
from campaigns.models import Condition, Rule, Send

# The sends that count as "the contact's email from that rule": the waiting one and those that may
# have reached the person. Cancelled, suppressed, failed and not-accepted ones never did.
COUNTED_STATES = (Send.State.SCHEDULED, *Send.MAYBE_SENT_STATES)
_COLUMNS = ("pk", "contact_id", "rule_id", "state", "sending_started_at", "sent_at", "opened_at", "clicked_at",
            "converted_at")  # fmt: skip


def engagement_facts_load(contact_ids: Iterable[int], rule_ids: Iterable[int]) -> dict[int, dict[int, EngagementFact]]:
    """contact id → rule id → the contact's most recent counted email from that rule."""
    contacts, rules = set(contact_ids), set(rule_ids)
    facts: dict[int, dict[int, EngagementFact]] = defaultdict(dict)
    if not contacts or not rules:
        return facts
    rows = Send.objects.filter(contact_id__in=contacts, rule_id__in=rules, state__in=COUNTED_STATES)
    for pk, contact_id, rule_id, state, started, sent, opened, clicked, converted in rows.order_by("pk").values_list(
        *_COLUMNS
    ):
        # In id order: the last one per contact and rule is the most recent.
        facts[contact_id][rule_id] = EngagementFact(
            send_id=pk,
            pending=state == Send.State.SCHEDULED,
            # A send in flight or unknown may have reached the person: it counts as sent from its start.
            sent_at=sent or started,
            opened_at=opened,
            clicked_at=clicked,
            converted_at=converted,
        )
    return facts


def engagement_rule_ids(conditions: Iterable[ConditionData]) -> set[int]:
    """The earlier rules these conditions read."""
    return {c.rule_id for c in conditions if c.source == SOURCE and c.rule_id is not None}


def rule_ids_by_name(names: Iterable[str]) -> dict[str, int]:
    return dict(Rule.objects.filter(name__in=set(names)).values_list("name", "pk"))


def engagement_conditions_load(rule_ids: Iterable[int]) -> dict[int, tuple[ConditionData, ...]]:
    """rule id → its engagement conditions, each with the id of the rule it names: for the send time."""
    rows = list(
        Condition.objects.filter(rule_id__in=set(rule_ids), source=SOURCE).values_list("rule_id", "key", "operator")
    )
    ids = rule_ids_by_name(key for _, key, _ in rows)
    conditions: dict[int, list[ConditionData]] = defaultdict(list)
    for rule_id, key, operator in rows:
        conditions[rule_id].append(ConditionData(source=SOURCE, key=key, operator=operator, rule_id=ids.get(key)))
    return {rule_id: tuple(found) for rule_id, found in conditions.items()}
