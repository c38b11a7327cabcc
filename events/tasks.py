"""django-q2 entry points for events: thin, safe to run twice or concurrently."""

from __future__ import annotations

from events.processing import events_process_pending


def events_process() -> int:
    return events_process_pending()
