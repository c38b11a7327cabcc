"""What the send-time checks need to know, read for a whole batch of sends in a few queries.

Claiming sends one by one asked the database the same questions for every send (exit events,
recent sends for the cooldown and the caps, consent, suppression). A batch asks each question once
for all its sends; `send_claimed` then adds each send claimed earlier in the same batch, so that the
next send of the same contact sees it exactly as it would have seen a `sending` row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q

from campaigns.consent.suppression import email_normalize, suppression_reasons
from campaigns.matching.conditions import ConditionData
from campaigns.matching.engagement import EngagementFact
from campaigns.matching.engagement_facts import engagement_conditions_load, engagement_facts_load, engagement_rule_ids
from campaigns.models import CampaignSettings, Category, Send
from events.models import Contact, Event


@dataclass(frozen=True)
class CountedSend:
    """A send that may have reached the person: it counts for cooldowns and frequency caps."""

    pk: int | None
    rule_id: int
    category: str
    sending_started_at: datetime | None
    sent_at: datetime | None


@dataclass(frozen=True)
class ExitEvent:
    pk: int
    name: str
    occurred_at: datetime


@dataclass(frozen=True)
class Consent:
    email: str
    unsubscribed: bool
    unsubscribed_topics: tuple[str, ...]


@dataclass
class ClaimFacts:
    settings: CampaignSettings
    counted: dict[int, list[CountedSend]] = field(default_factory=lambda: defaultdict(list))
    exits: dict[str, list[ExitEvent]] = field(default_factory=lambda: defaultdict(list))
    consent: dict[int, Consent] = field(default_factory=dict)
    suppressed: dict[str, str] = field(default_factory=dict)
    # Engagement conditions by rule id, and contact id → earlier rule id → its latest email.
    engagement_conditions: dict[int, tuple[ConditionData, ...]] = field(default_factory=dict)
    engagement: dict[int, dict[int, EngagementFact]] = field(default_factory=dict)

    def counted_sends(self, contact_id: int | None) -> list[CountedSend]:
        return self.counted.get(contact_id, []) if contact_id is not None else []

    def exit_events(self, user_id: str) -> list[ExitEvent]:
        return self.exits.get(user_id, [])

    def consent_of(self, contact: Contact) -> Consent:
        # A contact not read with the batch (never stored) has made no choice.
        return self.consent.get(contact.pk, Consent(contact.email, unsubscribed=False, unsubscribed_topics=()))

    def suppression_of(self, email: str) -> str:
        return self.suppressed.get(email_normalize(email), "") if email else ""

    def send_claimed(self, send: Send, *, now: datetime) -> None:
        """Count a send this batch just claimed, for the sends of the same contact after it."""
        row = CountedSend(send.pk, send.rule_id, send.rule.template.category, now, None)
        self.counted[send.contact_id].append(row)
        # It is now the contact's most recent email from its rule, on its way: engagement conditions
        # of later sends in the batch ("was sent") see it so.
        if send.contact_id is not None:
            self.engagement.setdefault(send.contact_id, {})[send.rule_id] = EngagementFact(send_id=send.pk, sent_at=now)


def claim_facts_load(
    sends: Sequence[Send],
    *,
    now: datetime,
    settings: CampaignSettings | None = None,
    consent: dict[int, Consent] | None = None,
    engagement_conditions: dict[int, tuple[ConditionData, ...]] | None = None,
) -> ClaimFacts:
    """The facts for these sends (rule, template and contact already loaded on each).

    `consent` is given by a claim that has just read it under the contacts' row locks, and
    `engagement_conditions` (rule id → its engagement conditions) by a claim that keeps them
    (campaigns.sending.claim_rules); otherwise they are read here.
    """
    facts = ClaimFacts(settings=settings or CampaignSettings.current())
    contact_ids = {s.contact_id for s in sends if s.contact_id is not None}
    facts.consent = consent if consent is not None else consent_read(contact_ids)
    facts.suppressed = suppression_reasons(s.contact.email for s in sends)
    since = _counted_since(sends, facts.settings, now=now)
    if since is not None and contact_ids:
        facts.counted = _counted_load(contact_ids, since)
    facts.exits = _exits_load(sends, now=now)
    if engagement_conditions is None:
        engagement_conditions = engagement_conditions_load(s.rule_id for s in sends)
    facts.engagement_conditions = engagement_conditions
    earlier = engagement_rule_ids(c for found in facts.engagement_conditions.values() for c in found)
    facts.engagement = engagement_facts_load(contact_ids, earlier)
    return facts


def consent_read(contact_ids: Iterable[int], *, lock: bool = False) -> dict[int, Consent]:
    rows = Contact.objects.filter(pk__in=set(contact_ids)).order_by("pk")
    if lock:
        # Claims for one contact take turns (cooldown, last slot of a cap); a fixed order means two
        # batches that share contacts cannot deadlock.
        rows = rows.select_for_update()
    fields = ("pk", "email", "unsubscribed_at", "unsubscribed_topics")
    return {
        pk: Consent(email, unsubscribed=unsubscribed_at is not None, unsubscribed_topics=tuple(topics or ()))
        for pk, email, unsubscribed_at, topics in rows.values_list(*fields)
    }


def _counted_since(sends: Sequence[Send], settings: CampaignSettings, *, now: datetime) -> datetime | None:
    """How far back the cooldowns and caps of these sends look; None when none applies."""
    periods: list[timedelta] = []
    for send in sends:
        rule = send.rule
        if rule.cooldown:
            periods.append(rule.cooldown)
        if rule.cap_count is not None:
            periods.append(rule.cap_period)
        if rule.template.category == Category.MARKETING and settings.marketing_cap_count is not None:
            periods.append(settings.marketing_cap_period)
    return now - max(periods) if periods else None


def _counted_load(contact_ids: set[int], since: datetime) -> dict[int, list[CountedSend]]:
    rows = (
        Send.objects.filter(contact_id__in=contact_ids, state__in=Send.MAYBE_SENT_STATES)
        .filter(Q(sending_started_at__gt=since) | Q(sending_started_at__isnull=True, sent_at__gt=since))
        .values_list("pk", "contact_id", "rule_id", "rule__template__category", "sending_started_at", "sent_at")
    )
    counted: dict[int, list[CountedSend]] = defaultdict(list)
    for pk, contact_id, rule_id, category, started, sent in rows:
        counted[contact_id].append(CountedSend(pk, rule_id, category, started, sent))
    return counted


def _exits_load(sends: Sequence[Send], *, now: datetime) -> dict[str, list[ExitEvent]]:
    with_exits = [s for s in sends if s.rule.exit_events]
    if not with_exits:
        return defaultdict(list)
    rows = Event.objects.filter(
        user_id__in={s.contact.user_id for s in with_exits},
        type=Event.Type.TRACK,
        name__in={name for s in with_exits for name in s.rule.exit_events},
        occurred_at__lte=now,
        occurred_at__gte=min(s.triggered_at for s in with_exits),
    ).values_list("pk", "user_id", "name", "occurred_at")
    exits: dict[str, list[ExitEvent]] = defaultdict(list)
    for pk, user_id, name, occurred_at in rows:
        exits[user_id].append(ExitEvent(pk, name, occurred_at))
    return exits
