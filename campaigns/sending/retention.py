"""Pruning what is no longer needed: expired idempotency keys, old events and provider events.

Deletes go in batches of PRUNE_BATCH rows, one short transaction each, so that pruning a large
backlog never holds locks that ingest or delivery wait on. Every batch is idempotent: several
dispatchers pruning at once delete each row once and the others find nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Model, QuerySet

from campaigns.models import IdempotencyKey, ProviderEvent
from events.models import Event

PRUNE_BATCH = 5000


def records_prune(*, now: datetime, batch: int = PRUNE_BATCH) -> dict[str, int]:
    """Delete what retention allows; return how many rows of each kind went."""
    retention = now - timedelta(days=settings.EVENT_RETENTION_DAYS)
    return {
        # A key with no expiry (once per user, once per property value) is kept for good. An expiring
        # key outlives its dedupe window (IDEMPOTENCY_KEY_DAYS >= 2 is a system check).
        "idempotency_keys": _delete_in_batches(IdempotencyKey.objects.filter(expires_at__lt=now), batch),
        # Only processed events: an unprocessed one is work still to do. Their sends stay (event=NULL)
        # with everything a person needs; their decisions go with them.
        "events": _delete_in_batches(
            Event.objects.filter(processed_at__isnull=False, received_at__lt=retention), batch
        ),
        "provider_events": _delete_in_batches(ProviderEvent.objects.filter(received_at__lt=retention), batch),
    }


def _delete_in_batches(queryset: QuerySet[Model], batch: int) -> int:
    total = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch])
            if not ids:
                return total
            _, deleted = queryset.model._default_manager.filter(pk__in=ids).delete()
        total += deleted.get(queryset.model._meta.label, 0)
