"""Turning stored events into decisions and scheduled sends.

A batch of unprocessed events is claimed, matched and marked processed in one transaction, so an
event is either fully processed or not at all; a task that dies midway leaves it for the next one.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.conversions import conversions_record
from campaigns.matching import ContactData, EventData, MatchDecision, RuleData, contact_with_send, rules_matching
from campaigns.models import CampaignSettings, Decision, Send
from campaigns.scheduling import exit_sends_cancel, sends_enqueue
from campaigns.selectors import contacts_data, rules_current
from events.models import Contact, Event

BATCH_SIZE = 500


def events_process_pending(*, batch_size: int = BATCH_SIZE) -> int:
    """Process unprocessed events until none are left; return how many were processed."""
    total = 0
    while processed := events_process_batch(batch_size=batch_size):
        total += processed
    return total


def events_process_batch(*, batch_size: int = BATCH_SIZE) -> int:
    with transaction.atomic():
        events = list(
            Event.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True)
            .order_by("id")[:batch_size]
        )
        if not events:
            return 0
        now = timezone.now()
        defaults = CampaignSettings.current()
        rules = rules_current(defaults)
        names = {e.name for e in events if e.type == Event.Type.TRACK}
        triggered = [r for r in rules if r.trigger_event in names]
        contacts = contacts_data(
            (e.user_id for e in events), (r.id for r in triggered), fallback_timezone=defaults.fallback_timezone
        )
        due_now: list[int] = []
        for event in events:
            if event.type != Event.Type.TRACK:
                continue
            exit_sends_cancel(event=event, rules=rules)
            pair = contacts.get(event.user_id)
            decisions = _event_match(event, pair, triggered, now)
            contact_data = _decisions_store(event, pair, decisions, due_now, now)
            if pair is not None:
                contacts[event.user_id] = (pair[0], contact_data or pair[1])
        conversions_record(events, rules)
        Event.objects.filter(pk__in=[e.pk for e in events]).update(processed_at=now)
        sends_enqueue(due_now, now=now)
    return len(events)


def _event_match(
    event: Event, pair: tuple[Contact, ContactData] | None, rules: list[RuleData], now: datetime
) -> list[MatchDecision]:
    data = EventData(
        id=event.pk, name=event.name, user_id=event.user_id, properties=event.properties, occurred_at=event.occurred_at
    )
    contact = pair[1] if pair is not None else ContactData(user_id=event.user_id, email="")
    return rules_matching(data, contact, rules, now)


def _decisions_store(
    event: Event,
    pair: tuple[Contact, ContactData] | None,
    decisions: list[MatchDecision],
    due_now: list[int],
    now: datetime,
) -> ContactData | None:
    contact, contact_data = pair if pair is not None else (None, None)
    rows = []
    for decision in decisions:
        send = None
        if decision.scheduled and contact is not None and decision.due_at is not None:
            send = _send_create(event, contact, decision)
            if send is None:
                decision = MatchDecision(
                    decision.rule_id, "duplicate", f"already scheduled or sent under key {decision.dedupe_key}"
                )
            else:
                assert contact_data is not None
                contact_data = contact_with_send(contact_data, decision)
                if send.due_at <= now:
                    due_now.append(send.pk)
        rows.append(
            Decision(
                event=event,
                rule_id=decision.rule_id,
                contact=contact,
                outcome=Decision.Outcome.SCHEDULED if send else Decision.Outcome.SKIPPED,
                reason=decision.reason,
                detail=decision.detail[:500],
                due_at=decision.due_at if send else None,
                send=send,
            )
        )
    Decision.objects.bulk_create(rows)
    return contact_data


def _send_create(event: Event, contact: Contact, decision: MatchDecision) -> Send | None:
    """The new send, or None when a live send already holds its dedupe key."""
    assert decision.due_at is not None
    try:
        with transaction.atomic():
            return Send.objects.create(
                rule_id=decision.rule_id,
                contact=contact,
                event=event,
                triggered_at=event.occurred_at,
                dedupe_key=decision.dedupe_key,
                due_at=decision.due_at,
            )
    except IntegrityError:
        return None
