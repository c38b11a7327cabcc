"""Pruning what is no longer needed: expired idempotency keys, old events and provider events.

Deletes go in batches of PRUNE_BATCH rows, one short transaction each, so that pruning a large
backlog never holds locks that ingest or delivery wait on. Every batch is idempotent: several
dispatchers pruning at once delete each row once and the others find nothing.

On PostgreSQL events, decisions and provider events are partitioned by day (triggermail.partitions):
a day wholly past retention is dropped whole, which costs no row-by-row delete and leaves no dead
rows to vacuum; only the DEFAULT partitions (rows whose day had no partition) are deleted from row
by row. The seen-keys tables that keep messageIds and provider event ids unique there are pruned
past MESSAGE_DEDUPE_DAYS.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Model, QuerySet

from campaigns.models import IdempotencyKey, ProviderEvent, ProviderEventKey
from events.models import Event, MessageKey
from triggermail.partitions import default_partition_name, partitioned, partitions_drop_before

PRUNE_BATCH = 5000


def records_prune(*, now: datetime, batch: int = PRUNE_BATCH) -> dict[str, int]:
    """Delete what retention allows; return how many rows of each kind went."""
    retention = now - timedelta(days=settings.EVENT_RETENTION_DAYS)
    seen = now - timedelta(days=settings.MESSAGE_DEDUPE_DAYS)
    # Whole days first (PostgreSQL); an events day waits while it holds an unprocessed event.
    dropped = partitions_drop_before(before=retention)
    events = Event.objects.filter(processed_at__isnull=False, received_at__lt=retention)
    provider_events = ProviderEvent.objects.filter(received_at__lt=retention)
    return {
        # A key with no expiry (once per user, once per property value) is kept for good. An expiring
        # key outlives its dedupe window (IDEMPOTENCY_KEY_DAYS >= 2 is a system check).
        "idempotency_keys": _delete_in_batches(IdempotencyKey.objects.filter(expires_at__lt=now), batch),
        # Only processed events: an unprocessed one is work still to do. Their sends stay (event=NULL)
        # with everything a person needs; their decisions go with them.
        "events": _delete_in_batches(_default_partition_only(events), batch),
        "provider_events": _delete_in_batches(_default_partition_only(provider_events), batch),
        "message_keys": _delete_in_batches(MessageKey.objects.filter(received_at__lt=seen), batch),
        "provider_event_keys": _delete_in_batches(ProviderEventKey.objects.filter(received_at__lt=seen), batch),
        "partitions": len(dropped),
    }


def _default_partition_only(queryset: QuerySet[Model]) -> QuerySet[Model]:
    """On a partitioned table, only the rows of its DEFAULT partition: whole days are dropped instead."""
    table = queryset.model._meta.db_table
    if not partitioned(table):
        return queryset
    return queryset.extra(where=[f"{table}.tableoid = %s::regclass"], params=[default_partition_name(table)])


def _delete_in_batches(queryset: QuerySet[Model], batch: int) -> int:
    total = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch])
            if not ids:
                return total
            _, deleted = queryset.model._default_manager.filter(pk__in=ids).delete()
        total += deleted.get(queryset.model._meta.label, 0)
