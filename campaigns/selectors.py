"""Reading rules and contacts into the plain data that matching and delivery decide on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from campaigns.conditions import ConditionData
from campaigns.matching import ContactData, RuleData
from campaigns.models import Rule, Send
from events.models import Contact


def rule_data(rule: Rule) -> RuleData:
    return RuleData(
        id=rule.pk,
        name=rule.name,
        trigger_event=rule.trigger_event,
        template_name=rule.template.name,
        active=rule.active,
        delay=rule.delay,
        cooldown=rule.cooldown,
        conditions=tuple(
            ConditionData(source=c.source, key=c.key, operator=c.operator, value=c.value) for c in rule.conditions.all()
        ),
        exit_events=tuple(rule.exit_events or ()),
        dedupe_policy=rule.dedupe_policy,
        dedupe_property=rule.dedupe_property,
    )


def rules_current() -> list[RuleData]:
    """Every rule as it is now. Read per batch, so a marketer's change is live on the next event."""
    rules = Rule.objects.select_related("template").prefetch_related("conditions").order_by("delay", "id")
    return [rule_data(rule) for rule in rules]


def contacts_data(user_ids: Iterable[str], rule_ids: Iterable[int]) -> dict[str, tuple[Contact, ContactData]]:
    """Contacts by user id, with their live sends of the given rules (for cooldown and dedupe)."""
    contacts = {c.user_id: c for c in Contact.objects.filter(user_id__in=set(user_ids))}
    times: dict[int, dict[int, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    keys: dict[int, set[str]] = defaultdict(set)
    live = Send.objects.filter(
        contact__in=contacts.values(), rule_id__in=set(rule_ids), state__in=Send.LIVE_STATES
    ).values_list("contact_id", "rule_id", "dedupe_key", "due_at", "sent_at")
    for contact_id, rule_id, key, due_at, sent_at in live:
        times[contact_id][rule_id].append(sent_at or due_at)
        keys[contact_id].add(key)
    return {
        user_id: (
            contact,
            ContactData(
                user_id=user_id,
                email=contact.email,
                timezone=contact.timezone,
                traits=contact.traits,
                send_times={rule_id: tuple(t) for rule_id, t in times[contact.pk].items()},
                live_keys=frozenset(keys[contact.pk]),
            ),
        )
        for user_id, contact in contacts.items()
    }
