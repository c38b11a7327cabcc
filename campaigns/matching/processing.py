"""Turning stored events into decisions and scheduled sends.

A batch of unprocessed events is claimed, matched and marked processed in one transaction, so an
event is either fully processed or not at all; a processor that dies midway leaves it for the next.
An event that makes matching raise is isolated: its batch is matched again in smaller parts until
that event alone is marked failed (campaigns.matching.poison), so one bad event never stops the others.
The batch's sends are stored with one INSERT … ON CONFLICT DO NOTHING (a live send already holding
a dedupe key wins), and the sends that are due at once are queued for delivery in the same
transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from campaigns.matching.conversions import conversions_record
from campaigns.matching.engagement_facts import engagement_rule_ids
from campaigns.matching.poison import event_fail
from campaigns.matching.rules import ContactData, EventData, MatchDecision, RuleData, contact_with_send, rules_matching
from campaigns.matching.rules_cache import rules_in_force
from campaigns.matching.selectors import contacts_data
from campaigns.models import Decision, Send
from campaigns.sending import lifecycle
from campaigns.sending.queueing import deliveries_queue, exit_sends_cancel
from events.models import Contact, Event
from triggermail.bulk import insert_all
from triggermail.durability import commit_without_waiting
from triggermail.errors import error_is_transient, error_summary

logger = logging.getLogger(__name__)

BATCH_SIZE = 500


def events_process_batch(*, batch_size: int = BATCH_SIZE) -> int:
    """Match a batch of unprocessed events in one transaction; return how many were processed.

    An event that makes matching raise (poison: data or a rule no code path expected) must not hold
    up the rest of its batch, nor every batch after it. So a batch that raises anything but a passing
    outage is rolled back and split in halves, each matched in its own transaction, and so on down
    to the one event that still raises, which is marked failed with the error (campaigns.matching.poison). One
    poison event in a batch of 500 costs about 2·log2(500) ≈ 18 more transactions, not 500.
    """
    try:
        return _events_claim_and_match(limit=batch_size)
    except Exception as exc:
        if error_is_transient(exc):
            # The database or broker is away: the events stay unprocessed and are tried again.
            raise
        logger.warning("a batch of events raised %s; matching it in parts", error_summary(exc))
    pending = Event.objects.filter(processed_at__isnull=True).order_by("id").values_list("pk", flat=True)
    return _events_process_halves(list(pending[:batch_size]))


def _events_process_isolated(ids: list[int]) -> int:
    """Match these events in one transaction; if that raises, in halves; mark a lone raiser failed."""
    if not ids:
        return 0
    try:
        return _events_claim_and_match(limit=len(ids), ids=ids)
    except Exception as exc:
        if error_is_transient(exc):
            raise
        if len(ids) == 1:
            return event_fail(ids[0], exc)
    return _events_process_halves(ids)


def _events_process_halves(ids: list[int]) -> int:
    # In id order, first half first: a contact's events are still matched in the order they came.
    half = len(ids) // 2
    return _events_process_isolated(ids[:half]) + _events_process_isolated(ids[half:])


def _events_claim_and_match(*, limit: int, ids: list[int] | None = None) -> int:
    with transaction.atomic():
        # Matching reads an event's name, user, time and properties; its context and traits (an SDK's
        # device, page and library details, often most of its size) are left in the database.
        pending = (
            Event.objects.select_for_update(skip_locked=True)
            .defer("context", "traits")
            .filter(processed_at__isnull=True)
        )
        if ids is not None:
            pending = pending.filter(pk__in=ids)
        events = list(pending.order_by("id")[:limit])
        if not events:
            return 0
        # Lost in a database crash, the batch is simply matched again (see triggermail.durability).
        commit_without_waiting()
        _events_match(events)
    return len(events)


def _events_match(events: list[Event]) -> None:
    """Decide, store and queue what these claimed events call for, and mark them processed."""
    now = timezone.now()
    defaults, rules = rules_in_force()
    names = {e.name for e in events if e.type == Event.Type.TRACK}
    triggered = [r for r in rules if r.trigger_event in names]
    exit_names = {name for r in rules for name in r.exit_events}
    contacts = contacts_data(
        (e.user_id for e in events),
        (r.id for r in triggered),
        fallback_timezone=defaults.fallback_timezone,
        engagement_rule_ids=engagement_rule_ids(c for r in triggered for c in r.conditions),
    )
    pending = _Pending(now=now)
    for event in events:
        if event.type != Event.Type.TRACK:
            continue
        if event.name in exit_names:
            # The exit must see the sends this batch has matched so far, as it would see them stored.
            pending.flush()
            exit_sends_cancel(event=event, rules=rules)
        pair = contacts.get(event.user_id)
        for decision in _event_match(event, pair, triggered, now):
            pending.add(event, pair[0] if pair is not None else None, decision)
            if pair is not None and decision.scheduled and decision.due_at is not None:
                pair = (pair[0], contact_with_send(pair[1], decision))
                contacts[event.user_id] = pair
    pending.flush()
    conversions_record(events, rules)
    Event.objects.filter(pk__in=[e.pk for e in events]).update(processed_at=now)
    deliveries_queue(pending.due_now)


def _event_match(
    event: Event, pair: tuple[Contact, ContactData] | None, rules: list[RuleData], now: datetime
) -> list[MatchDecision]:
    data = EventData(
        id=event.pk, name=event.name, user_id=event.user_id, properties=event.properties, occurred_at=event.occurred_at
    )
    contact = pair[1] if pair is not None else ContactData(user_id=event.user_id, email="")
    return rules_matching(data, contact, rules, now)


@dataclass
class _Pending:
    """The batch's decisions not yet stored, with the sends they schedule."""

    now: datetime
    decisions: list[tuple[Event, Contact | None, MatchDecision]] = field(default_factory=list)
    due_now: list[int] = field(default_factory=list)

    def add(self, event: Event, contact: Contact | None, decision: MatchDecision) -> None:
        self.decisions.append((event, contact, decision))

    def flush(self) -> None:
        if not self.decisions:
            return
        stored = self._sends_insert()
        rows = []
        for event, contact, decision in self.decisions:
            # One send per key: should two decisions carry one key, the first one has it.
            send_id = stored.pop(decision.dedupe_key, None) if self._schedules(contact, decision) else None
            if self._schedules(contact, decision) and send_id is None:
                # Another processor stored a live send with this key first.
                decision = MatchDecision(
                    decision.rule_id,
                    Decision.Reason.DUPLICATE,
                    f"already scheduled or sent under key {decision.dedupe_key}",
                    variant=decision.variant,
                )
            rows.append(
                Decision(
                    event=event,
                    rule_id=decision.rule_id,
                    contact=contact,
                    outcome=Decision.Outcome.SCHEDULED if send_id else Decision.Outcome.SKIPPED,
                    reason=decision.reason,
                    detail=decision.detail[:500],
                    # A holdout keeps the time its email would have gone out: its conversions count from it.
                    due_at=decision.due_at if send_id or decision.reason == Decision.Reason.HOLDOUT else None,
                    send_id=send_id,
                    variant=decision.variant,
                )
            )
        insert_all(rows)
        self.decisions = []

    @staticmethod
    def _schedules(contact: Contact | None, decision: MatchDecision) -> bool:
        return decision.scheduled and contact is not None and decision.due_at is not None

    def _sends_insert(self) -> dict[str, int]:
        """Store the scheduled decisions' sends; dedupe key → id of each send that was new."""
        sends = []
        for event, contact, decision in self.decisions:
            if not self._schedules(contact, decision):
                continue
            assert contact is not None and decision.due_at is not None
            due_now = decision.due_at <= self.now
            sends.append(
                Send(
                    rule_id=decision.rule_id,
                    contact=contact,
                    event=event,
                    triggered_at=event.occurred_at,
                    dedupe_key=decision.dedupe_key,
                    due_at=decision.due_at,
                    variant=decision.variant,
                    # Queued below, in this transaction.
                    enqueued_at=self.now if due_now else None,
                )
            )
        stored = {key: pk for pk, key in lifecycle.sends_insert(sends=sends, returning=["pk", "dedupe_key"])}
        self.due_now += [stored[s.dedupe_key] for s in sends if s.enqueued_at is not None and s.dedupe_key in stored]
        return stored
