"""django-q2 entry points for events: thin, safe to run twice or concurrently."""

from __future__ import annotations

from events.processing import events_process_pending


def events_process() -> int:
    # Nothing queues this any more: each qcluster's dispatcher matches events itself (campaigns.dispatch).
    # It stays so that tasks an earlier version queued still run after an upgrade.
    return events_process_pending()
