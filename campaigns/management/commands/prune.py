"""`manage.py prune`: delete expired idempotency keys, old events and provider events now.

Every dispatcher also does this once an hour; the command is for a backlog or a cron job.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from campaigns.sending.retention import records_prune


class Command(BaseCommand):
    help = "Delete expired idempotency keys, and events and provider events older than EVENT_RETENTION_DAYS."

    def handle(self, *args: Any, **options: Any) -> None:
        pruned = records_prune(now=timezone.now())
        self.stdout.write(", ".join(f"{count} {name.replace('_', ' ')}" for name, count in pruned.items()) + " deleted")
