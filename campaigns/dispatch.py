"""The dispatcher: the loop inside every qcluster that turns due rows into queued work.

django-q2's scheduler wakes only every 30 s, so a send due at 10:00:00 would leave up to 30 s
late. Instead each cluster runs this loop every DISPATCH_INTERVAL seconds. Several clusters may
run it at once: claiming is by row lock and state change, so they share the work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from campaigns.retention import records_prune
from campaigns.scheduling import due_sends_dispatch, stale_sending_settle
from campaigns.settlement import unknown_sends_abandon
from events.models import Event
from triggermail.queue import enqueue

logger = logging.getLogger(__name__)

# An event not processed this long after it was received lost its task: queue processing again.
EVENT_SWEEP_AFTER = timedelta(seconds=5)
SLOW_CHECKS_EVERY = 10.0
PRUNE_EVERY = 3600.0


def stale_events_dispatch(*, now: datetime) -> bool:
    if Event.objects.filter(processed_at__isnull=True, received_at__lt=now - EVENT_SWEEP_AFTER).exists():
        enqueue("events.tasks.events_process")
        return True
    return False


def dispatch_once(*, now: datetime, slow_checks: bool, prune: bool = False) -> int:
    queued = due_sends_dispatch(now=now)
    if slow_checks:
        stale_events_dispatch(now=now)
        settled = stale_sending_settle(now=now)
        if settled:
            logger.warning("%d in-flight sends outlived their worker and are now unknown", settled)
        abandoned = unknown_sends_abandon(now=now)
        if abandoned:
            logger.warning("%d unknown sends had no provider evidence in time and need a person", abandoned)
    if prune:
        logger.info("pruned %s", records_prune(now=now))
    return queued


def dispatcher_run(*, should_stop: Callable[[], bool], interval: float | None = None) -> None:
    interval = settings.DISPATCH_INTERVAL if interval is None else interval
    last_slow = 0.0
    # Not at start-up: a crash-looping worker must not prune on every restart.
    last_prune = time.monotonic()
    while not should_stop():
        started = time.monotonic()
        slow = started - last_slow >= SLOW_CHECKS_EVERY
        prune = started - last_prune >= PRUNE_EVERY
        try:
            close_old_connections()
            dispatch_once(now=timezone.now(), slow_checks=slow, prune=prune)
            if slow:
                last_slow = started
            if prune:
                last_prune = started
        except DatabaseError:
            # The database restarted or dropped us; the rows are still there, try again shortly.
            logger.exception("dispatcher could not reach the database")
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
