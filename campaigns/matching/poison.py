"""Events whose matching raised: marked failed with the reason, and processed again after a fix.

A failed event is out of the pipeline (`processed_at` set) and says why (`processing_error`). Each
rule that listens to it gets a Decision with reason `error`, so the contact's and the event's "why"
pages show it. Processing it again clears all three in one transaction; dedupe and idempotency keys
then make sure that whatever it should have sent goes out once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import DatabaseError, transaction
from django.utils import timezone

from campaigns.matching.rules_cache import rules_in_force
from campaigns.models import Decision
from events.models import Contact, Event
from triggermail.errors import error_summary

logger = logging.getLogger(__name__)


def event_fail(event_id: int, exc: BaseException) -> int:
    """Mark this unprocessed event failed by `exc`, in its own transaction; 1 if it was ours to mark."""
    error = error_summary(exc)
    logger.error("event %s could not be matched and is marked failed: %s", event_id, error, exc_info=exc)
    with transaction.atomic():
        event = (
            Event.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, processed_at__isnull=True)
            .defer("properties", "traits", "context")
            .first()
        )
        if event is None:
            # Another processor has it, or has already done it.
            return 0
        contact = Contact.objects.filter(user_id=event.user_id).first()
        Decision.objects.bulk_create(
            Decision(
                event=event,
                rule_id=rule_id,
                contact=contact,
                outcome=Decision.Outcome.SKIPPED,
                reason=Decision.Reason.ERROR,
                detail=error[:500],
            )
            for rule_id in _listening_rules(event)
        )
        Event.objects.filter(pk=event.pk).update(processed_at=timezone.now(), processing_error=error)
    return 1


def _listening_rules(event: Event) -> list[int]:
    if event.type != Event.Type.TRACK:
        return []
    try:
        _, rules = rules_in_force()
    except DatabaseError:
        raise
    except Exception:
        # When the rules themselves cannot be read, that is likely what failed the event: it is
        # still marked (without decisions) rather than left to stop every batch after it.
        logger.exception("the rules could not be read to record event %s's error decisions", event.pk)
        return []
    return [rule.id for rule in rules if rule.trigger_event == event.name]


def events_requeue(event_ids: Iterable[int]) -> int:
    """Give these failed events back to the dispatcher; return how many were failed and are now pending.

    Only failed events: one that was processed fine has its decisions and sends, and matching it
    again would only find its own dedupe keys taken.
    """
    with transaction.atomic():
        failed = list(
            Event.objects.select_for_update()
            .filter(pk__in=list(event_ids), processed_at__isnull=False)
            .exclude(processing_error="")
            .values_list("pk", flat=True)
        )
        # The error decisions go with the error: matching again stores the event's real decisions,
        # one per (event, rule) as the unique constraint wants.
        Decision.objects.filter(event_id__in=failed, reason=Decision.Reason.ERROR).delete()
        Event.objects.filter(pk__in=failed).update(processed_at=None, processing_error="")
    return len(failed)
