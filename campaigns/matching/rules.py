"""Matching an event to rules: one pure function of (event, contact, rules, now).

Nothing here touches the database, so every decision can be tested, simulated and explained
without one. `campaigns.matching.processing` loads the data, calls `rules_matching` and stores what it says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.consent.policy import consent_refusal
from campaigns.matching.conditions import MISSING, ConditionData, condition_holds, value_at
from campaigns.matching.engagement import SOURCE as ENGAGEMENT
from campaigns.matching.engagement import EngagementFact, engagement_holds, engagement_of
from campaigns.matching.locales import locale_words
from campaigns.matching.reasons import DecisionReason
from campaigns.matching.variants import VariantData, variant_assign, variant_describe
from campaigns.matching.windows import SendWindow, window_next_open, zone_resolve
from triggermail.text import text_storable
from triggermail.times import time_text

UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class EventData:
    id: int
    name: str
    user_id: str
    properties: Mapping[str, Any]
    occurred_at: datetime


@dataclass(frozen=True)
class ContactData:
    user_id: str
    email: str
    timezone: str = ""
    traits: Mapping[str, Any] = field(default_factory=dict)
    # rule id -> due or sent times of that rule's live sends to this contact (for cooldowns)
    send_times: Mapping[int, tuple[datetime, ...]] = field(default_factory=dict)
    # dedupe keys of this contact's live sends (scheduled, sending, sent, unknown)
    live_keys: frozenset[str] = frozenset()
    # CampaignSettings.fallback_timezone, for contacts whose own zone is empty or unknown.
    fallback_timezone: str = "UTC"
    # Consent (campaigns.consent.policy): left all marketing, the topics left, why the address is
    # suppressed in words ("" when it is not).
    unsubscribed: bool = False
    unsubscribed_topics: frozenset[str] = frozenset()
    suppressed: str = ""
    # The contact's language tag (campaigns.matching.locales picks the translation by it).
    locale: str = ""
    # rule id -> the contact's most recent email from that rule, for engagement conditions.
    engagement: Mapping[int, EngagementFact] = field(default_factory=dict)

    def zone(self) -> ZoneInfo:
        return zone_resolve(self.timezone, self.fallback_timezone)


@dataclass(frozen=True)
class RuleData:
    id: int
    name: str
    trigger_event: str
    template_name: str
    active: bool = True
    delay: timedelta = timedelta(0)
    cooldown: timedelta = timedelta(0)
    conditions: tuple[ConditionData, ...] = ()
    exit_events: tuple[str, ...] = ()
    dedupe_policy: str = "per_event"
    dedupe_property: str = ""
    # The template's category and topic: whom consent lets this rule email.
    category: str = "marketing"
    topic: str = ""
    # The rule's own send window, else CampaignSettings' default; None: any time.
    window: SendWindow | None = None
    cap_count: int | None = None
    cap_period: timedelta = timedelta(days=1)
    capped_action: str = "skip"
    goal_event: str = ""
    goal_window: timedelta = timedelta(days=3)
    # The locales the template has translations for; empty: it speaks one language.
    locales: frozenset[str] = frozenset()
    # A/B variants (campaigns.matching.variants); empty: the rule sends its own template.
    variants: tuple[VariantData, ...] = ()


@dataclass(frozen=True)
class MatchDecision:
    rule_id: int
    reason: DecisionReason
    detail: str = ""
    due_at: datetime | None = None
    dedupe_key: str = ""
    # The contact's A/B variant of the rule, when it has variants.
    variant: str = ""

    @property
    def scheduled(self) -> bool:
        return self.reason == DecisionReason.SCHEDULED


def dedupe_key(rule: RuleData, event: EventData, contact: ContactData) -> str | None:
    """The key that at most one live send may hold; None when the rule's property is missing."""
    policy = rule.dedupe_policy
    if policy == "per_event":
        scope = f"e:{event.id}"
    elif policy == "per_user_day":
        local_day = event.occurred_at.astimezone(contact.zone()).date().isoformat()
        scope = f"u:{contact.user_id}:d:{local_day}"
    elif policy == "once_per_user":
        scope = f"u:{contact.user_id}"
    elif policy == "per_property":
        value = value_at(event.properties, rule.dedupe_property)
        if value is MISSING or value is None or value == "" or isinstance(value, dict | list):
            return None
        scope = f"u:{contact.user_id}:p:{rule.dedupe_property}={value}"
    else:
        raise ValueError(f"unknown dedupe policy {policy!r}")
    key = f"r:{rule.id}:{scope}"
    # Keys are readable for people; very long user ids or values are hashed to fit the column, and
    # so is text no database can store (PostgreSQL refuses NUL; nothing encodes a lone surrogate).
    if len(key) <= 200 and text_storable(key):
        return key
    # surrogatepass: the same bytes as UTF-8 for any valid text (so the hashes of stored keys
    # stay what they were), and bytes at all for a lone surrogate.
    return f"r:{rule.id}:h:{hashlib.sha256(key.encode(errors='surrogatepass')).hexdigest()}"


def _in_cooldown(rule: RuleData, contact: ContactData, due_at: datetime) -> datetime | None:
    if not rule.cooldown:
        return None
    for other in contact.send_times.get(rule.id, ()):
        if abs(other - due_at) < rule.cooldown:
            return other
    return None


def rule_decide(rule: RuleData, event: EventData, contact: ContactData, now: datetime) -> MatchDecision:
    """The decision for one rule that listens to this event."""
    if not rule.active:
        return MatchDecision(rule.id, DecisionReason.INACTIVE, f"rule {rule.name!r} is paused")
    if not contact.email:
        return MatchDecision(rule.id, DecisionReason.NO_EMAIL, f"contact {contact.user_id!r} has no email address")
    refusal = consent_refusal(
        category=rule.category,
        topic=rule.topic,
        suppressed=contact.suppressed,
        unsubscribed=contact.unsubscribed,
        unsubscribed_topics=contact.unsubscribed_topics,
    )
    if refusal is not None:
        return MatchDecision(rule.id, refusal.reason, refusal.detail)
    for condition in rule.conditions:
        if not _condition_met(condition, event, contact):
            return MatchDecision(rule.id, DecisionReason.CONDITION_FALSE, f"condition not met: {condition.describe()}")
    key = dedupe_key(rule, event, contact)
    if key is None:
        return MatchDecision(rule.id, DecisionReason.NO_DEDUPE_VALUE, f"event has no property {rule.dedupe_property!r}")
    if key in contact.live_keys:
        return MatchDecision(rule.id, DecisionReason.DUPLICATE, f"already scheduled or sent under key {key}")
    due_at = max(event.occurred_at + rule.delay, now)
    detail = f"due {time_text(due_at)}"
    if rule.window is not None:
        window = rule.window
        opening = window_next_open(due_at, contact.zone(), window.start, window.end, window.days)
        if opening != due_at:
            local = time_text(opening, zone=contact.zone())
            detail += f"; moved to the send window opening at {time_text(opening)} = {local}"
            due_at = opening
    previous = _in_cooldown(rule, contact, due_at)
    if previous is not None:
        return MatchDecision(rule.id, DecisionReason.COOLDOWN, f"another email from this rule at {time_text(previous)}")
    scheduled = MatchDecision(rule.id, DecisionReason.SCHEDULED, detail + _scheduled_notes(rule, contact), due_at, key)
    return _variant_applied(rule, contact, scheduled)


def _condition_met(condition: ConditionData, event: EventData, contact: ContactData) -> bool:
    if condition.source == ENGAGEMENT:
        fact = engagement_of(contact.engagement, condition.rule_id)
        # The earlier email has not gone out yet (often it was scheduled by this very event): nothing
        # can be known about it now, so it is judged when this email falls due (campaigns.sending.checks).
        return fact.pending or engagement_holds(condition.operator, fact)
    return condition_holds(condition, event.properties, contact.traits)


def _scheduled_notes(rule: RuleData, contact: ContactData) -> str:
    """What else the trace of a scheduled email says: its language, the conditions judged again when due."""
    notes = ""
    if rule.locales:
        notes += f"; {locale_words(contact.locale, rule.locales)}"
    again = [c.describe() for c in rule.conditions if c.source == ENGAGEMENT]
    if again:
        notes += f"; checked again when due: {' and '.join(again)}"
    return notes


def _variant_applied(rule: RuleData, contact: ContactData, decision: MatchDecision) -> MatchDecision:
    """The scheduled decision with the contact's variant; a holdout's becomes a skip that keeps its due time.

    Assigned last, after every check, so the holdout holds exactly the contacts who would have been
    sent the email: the control group compares like with like. The holdout keeps the due time it
    would have been sent at, from which its conversions are counted (campaigns.matching.conversions).
    """
    variant = variant_assign(rule.id, contact.user_id, rule.variants)
    if variant is None:
        return decision
    detail = f"{decision.detail}; {variant_describe(variant, rule.variants)}"
    if variant.holdout:
        return MatchDecision(rule.id, DecisionReason.HOLDOUT, detail, due_at=decision.due_at, variant=variant.name)
    return replace(decision, detail=detail, variant=variant.name)


def rules_matching(
    event: EventData, contact: ContactData, rules: Sequence[RuleData], now: datetime
) -> list[MatchDecision]:
    """One decision per rule that listens to this event: scheduled (due when) or skipped (why).

    Decisions are made in order (the rules' order), and a scheduled one counts for the cooldowns
    and dedupe keys of the rules after it, as it will once stored.
    """
    decisions: list[MatchDecision] = []
    for rule in rules:
        if rule.trigger_event != event.name:
            continue
        decision = rule_decide(rule, event, contact, now)
        decisions.append(decision)
        if decision.scheduled:
            contact = contact_with_send(contact, decision)
    return decisions


def contact_with_send(contact: ContactData, decision: MatchDecision) -> ContactData:
    """The contact as it is once a scheduled decision's send is stored."""
    assert decision.due_at is not None
    times = dict(contact.send_times)
    times[decision.rule_id] = (*times.get(decision.rule_id, ()), decision.due_at)
    # The new email is now the contact's most recent from this rule, and it has not gone out yet.
    engagement = {**contact.engagement, decision.rule_id: EngagementFact(pending=True)}
    return replace(
        contact, send_times=times, live_keys=contact.live_keys | {decision.dedupe_key}, engagement=engagement
    )
