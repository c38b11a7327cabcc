"""Changing scheduled sends in bulk: cancelling on exit events and queueing due ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from campaigns.matching.conversions import holdouts_exit
from campaigns.matching.rules import RuleData
from campaigns.models import Send
from campaigns.sending import lifecycle
from events.models import Event
from triggermail.queue import enqueue
from triggermail.times import time_text

# Sends per delivery task: one claim transaction and up to DELIVERY_CONCURRENCY provider calls at
# once; small enough that a burst is spread over every worker.
DELIVERY_CHUNK = 50
DISPATCH_BATCH = 500


def exit_sends_cancel(*, event: Event, rules: Sequence[RuleData]) -> int:
    """Cancel this contact's scheduled sends of rules that list the event as an exit event."""
    exiting = [r.id for r in rules if event.name in r.exit_events]
    if not exiting:
        return 0
    # Triggered before the exit event; at the same instant, only if the trigger arrived first.
    before_exit = Q(triggered_at__lt=event.occurred_at) | Q(triggered_at=event.occurred_at, event_id__lt=event.pk)
    # Only rules running an A/B test have holdouts to take out: other rules pay no query for it.
    testing = [r.id for r in rules if r.variants and event.name in r.exit_events]
    if testing:
        holdouts_exit(event=event, rule_ids=testing)
    return lifecycle.sends_cancel_on_exit(
        sends=Send.objects.filter(before_exit, rule_id__in=exiting, contact__user_id=event.user_id),
        reason=f"exit event {event.name} at {time_text(event.occurred_at)}",
    )


def sends_enqueue(send_ids: Sequence[int], *, now: datetime) -> None:
    """Mark these sends queued and queue their delivery."""
    if not send_ids:
        return
    Send.objects.filter(pk__in=send_ids).update(enqueued_at=now)
    deliveries_queue(send_ids)


def deliveries_queue(send_ids: Sequence[int]) -> None:
    """Queue delivery tasks for these sends (already marked queued), in chunks that workers share."""
    for start in range(0, len(send_ids), DELIVERY_CHUNK):
        enqueue("campaigns.tasks.sends_deliver", list(send_ids[start : start + DELIVERY_CHUNK]))


def due_sends_queue(*, now: datetime) -> int:
    """Queue delivery of sends that are due and not queued recently; return how many."""
    # A queued task that has not claimed its send within the queue's retry lease was lost
    # (a Redis broker drops in-flight tasks when a cluster dies): queue it again.
    requeue_before = now - timedelta(seconds=settings.Q_CLUSTER["retry"])
    with transaction.atomic():
        due = (
            Send.objects.select_for_update(skip_locked=True)
            .filter(state=Send.State.SCHEDULED, due_at__lte=now)
            .exclude(enqueued_at__gte=requeue_before)
            .order_by("due_at")
            .values_list("pk", flat=True)[:DISPATCH_BATCH]
        )
        ids = list(due)
        sends_enqueue(ids, now=now)
    return len(ids)


def next_due_at(*, after: datetime) -> datetime | None:
    """When the next scheduled send falls due after `after` (one step down the partial index send_due)."""
    return (
        Send.objects.filter(state=Send.State.SCHEDULED, due_at__gt=after)
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )


def held_sends_requeue(*, held_before: datetime, now: datetime) -> int:
    """Queue again every due send still scheduled that was queued before `held_before`; return how many.

    For the sends a dead host may have held (campaigns.operations.heartbeats): they go out within seconds
    instead of after the queue's retry lease. Queuing a send twice never sends it twice (the claim).
    """
    # Never after `now`: the sends this marks queued must drop out of the next batch's filter.
    held_before = min(held_before, now)
    total = 0
    while True:
        with transaction.atomic():
            ids = list(
                Send.objects.select_for_update(skip_locked=True)
                .filter(state=Send.State.SCHEDULED, due_at__lte=now, enqueued_at__lt=held_before)
                .order_by("due_at")
                .values_list("pk", flat=True)[:DISPATCH_BATCH]
            )
            # Marked queued at `now` (after `held_before`), so the next batch finds the others.
            sends_enqueue(ids, now=now)
        total += len(ids)
        if len(ids) < DISPATCH_BATCH:
            return total


def stale_sending_settle(*, now: datetime) -> int:
    """A send whose provider call outlived any possible answer becomes unknown, never scheduled."""
    return lifecycle.sends_mark_stale(started_before=now - timedelta(seconds=settings.SENDING_STALE_AFTER))
