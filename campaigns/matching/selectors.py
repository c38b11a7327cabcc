"""Reading rules and contacts into the plain data that matching and delivery decide on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime

from campaigns.consent.suppression import email_normalize, suppression_reasons
from campaigns.matching.conditions import ConditionData
from campaigns.matching.engagement import SOURCE as ENGAGEMENT
from campaigns.matching.engagement_facts import engagement_facts_load, rule_ids_by_name
from campaigns.matching.rules import ContactData, RuleData
from campaigns.matching.variants import VariantData
from campaigns.matching.windows import SendWindow
from campaigns.models import CampaignSettings, Rule, Send
from events.models import Contact


def window_of(holder: Rule | CampaignSettings) -> SendWindow | None:
    """The send window a rule or the settings define; None when they define none."""
    if holder.window_start is None or holder.window_end is None:
        return None
    return SendWindow(start=holder.window_start, end=holder.window_end, days=tuple(holder.window_days or ()))


def rule_window(rule: Rule, defaults: CampaignSettings | None) -> SendWindow | None:
    """The rule's own window, else the default one of the settings."""
    return window_of(rule) or (window_of(defaults) if defaults is not None else None)


def _conditions_data(rule: Rule, rule_ids: Mapping[str, int] | None) -> tuple[ConditionData, ...]:
    """The rule's conditions; an engagement one carries the id of the rule it names (by name)."""
    conditions = list(rule.conditions.all())
    if rule_ids is None and any(c.source == ENGAGEMENT for c in conditions):
        rule_ids = rule_ids_by_name(c.key for c in conditions if c.source == ENGAGEMENT)
    return tuple(
        ConditionData(
            source=c.source,
            key=c.key,
            operator=c.operator,
            value=c.value,
            rule_id=(rule_ids or {}).get(c.key) if c.source == ENGAGEMENT else None,
        )
        for c in conditions
    )


def rule_data(
    rule: Rule, defaults: CampaignSettings | None = None, rule_ids: Mapping[str, int] | None = None
) -> RuleData:
    """The rule as matching reads it; `rule_ids` (name → id of every rule) saves a query per rule."""
    return RuleData(
        id=rule.pk,
        name=rule.name,
        trigger_event=rule.trigger_event,
        template_name=rule.template.name,
        active=rule.active,
        delay=rule.delay,
        cooldown=rule.cooldown,
        conditions=_conditions_data(rule, rule_ids),
        exit_events=tuple(rule.exit_events or ()),
        dedupe_policy=rule.dedupe_policy,
        dedupe_property=rule.dedupe_property,
        category=rule.template.category,
        topic=rule.template.topic,
        window=rule_window(rule, defaults),
        cap_count=rule.cap_count,
        cap_period=rule.cap_period,
        capped_action=rule.capped_action,
        goal_event=rule.goal_event,
        goal_window=rule.goal_window,
        locales=frozenset(t.locale for t in rule.template.translations.all()),
        variants=tuple(
            VariantData(name=v.name, template_name=v.template.name if v.template else "", weight=v.weight)
            for v in rule.variants.all()
        ),
    )


def rules_current(defaults: CampaignSettings | None = None) -> list[RuleData]:
    """Every rule as it is now. Read per batch, so a marketer's change is live on the next event."""
    rules = list(
        Rule.objects.select_related("template")
        .prefetch_related("conditions", "template__translations", "variants__template")
        .order_by("delay", "id")
    )
    defaults = defaults or CampaignSettings.current()
    ids = {rule.name: rule.pk for rule in rules}
    return [rule_data(rule, defaults, ids) for rule in rules]


def contacts_data(
    user_ids: Iterable[str],
    rule_ids: Iterable[int],
    *,
    fallback_timezone: str = "UTC",
    engagement_rule_ids: Iterable[int] = (),
) -> dict[str, tuple[Contact, ContactData]]:
    """Contacts by user id, with their live sends of the given rules (for cooldown and dedupe) and
    their latest emails from the rules that engagement conditions read."""
    contacts = {c.user_id: c for c in Contact.objects.filter(user_id__in=set(user_ids))}
    engagement = engagement_facts_load((c.pk for c in contacts.values()), engagement_rule_ids)
    times: dict[int, dict[int, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    keys: dict[int, set[str]] = defaultdict(set)
    live = Send.objects.filter(
        contact__in=contacts.values(), rule_id__in=set(rule_ids), state__in=Send.LIVE_STATES
    ).values_list("contact_id", "rule_id", "dedupe_key", "due_at", "sent_at")
    for contact_id, rule_id, key, due_at, sent_at in live:
        times[contact_id][rule_id].append(sent_at or due_at)
        keys[contact_id].add(key)
    suppressed = suppression_reasons(contact.email for contact in contacts.values())
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
                fallback_timezone=fallback_timezone,
                unsubscribed=contact.unsubscribed_at is not None,
                unsubscribed_topics=frozenset(contact.unsubscribed_topics or ()),
                suppressed=suppressed.get(email_normalize(contact.email), ""),
                locale=contact.locale,
                engagement=engagement.get(contact.pk, {}),
            ),
        )
        for user_id, contact in contacts.items()
    }
