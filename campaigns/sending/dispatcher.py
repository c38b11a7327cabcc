"""The dispatcher: the loop inside every qcluster that turns rows into work.

It matches new events the moment they are committed (woken by the ingest's NOTIFY on PostgreSQL,
see triggermail.wakeup, and looking every DISPATCH_INTERVAL seconds anyway), and queues due sends:
django-q2's scheduler wakes only every 30 s, so a send due at 10:00:00 would leave up to 30 s late.
Matching runs here, in one process per host, rather than as a task per ingest request: a task row
per request would cost more than the matching itself. Several clusters may run the loop at once:
events and sends are claimed by row lock (SKIP LOCKED) and state change, so they share the work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from campaigns.matching.processing import BATCH_SIZE, events_process_batch
from campaigns.sending.queueing import due_sends_dispatch, stale_sending_settle
from campaigns.sending.retention import records_prune
from campaigns.sending.settlement import unknown_sends_abandon
from triggermail.wakeup import Listener

logger = logging.getLogger(__name__)

SLOW_CHECKS_EVERY = 10.0
PRUNE_EVERY = 3600.0
# Matching a burst of events yields to the due-send dispatch after this long, then goes on.
PROCESS_SLICE = 0.5
# After a wake-up, wait this long for the events committed just after it. Under a steady stream of
# single track calls each wake-up would otherwise match one or two events, paying a batch's fixed
# cost (a dozen statements, a commit, a delivery task) per event; waiting turns that into one batch
# per 50 ms of events. At 200 single track calls/s (make bench --only P3, ORM broker) p99 went from
# 927 ms (no wait) to 555 ms (20 ms) to 382 ms (50 ms): less work per event leaves the cores idle
# sooner than the wait costs.
GATHER = 0.05


def dispatch_once(*, now: datetime, slow_checks: bool, prune: bool = False) -> int:
    queued = due_sends_dispatch(now=now)
    if slow_checks:
        settled = stale_sending_settle(now=now)
        if settled:
            logger.warning("%d in-flight sends outlived their worker and are now unknown", settled)
        abandoned = unknown_sends_abandon(now=now)
        if abandoned:
            logger.warning("%d unknown sends had no provider evidence in time and need a person", abandoned)
    if prune:
        logger.info("pruned %s", records_prune(now=now))
    return queued


def events_process_slice(*, seconds: float = PROCESS_SLICE) -> bool:
    """Match unprocessed events for up to `seconds`; True when more may be waiting."""
    deadline = time.monotonic() + seconds
    while events_process_batch() == BATCH_SIZE:
        if time.monotonic() >= deadline:
            return True
    return False


def dispatcher_run(*, should_stop: Callable[[], bool], interval: float | None = None) -> None:
    interval = settings.DISPATCH_INTERVAL if interval is None else interval
    listener = Listener()
    last_slow = 0.0
    # Not at start-up: a crash-looping worker must not prune on every restart.
    last_prune = time.monotonic()
    next_dispatch = 0.0
    try:
        while not should_stop():
            more = False
            try:
                close_old_connections()
                more = events_process_slice()
                started = time.monotonic()
                if started >= next_dispatch:
                    slow = started - last_slow >= SLOW_CHECKS_EVERY
                    prune = started - last_prune >= PRUNE_EVERY
                    dispatch_once(now=timezone.now(), slow_checks=slow, prune=prune)
                    last_slow = started if slow else last_slow
                    last_prune = started if prune else last_prune
                    next_dispatch = started + interval
            except DatabaseError:
                # The database restarted or dropped us; the rows are still there, try again shortly.
                logger.exception("dispatcher could not reach the database")
            if not more and listener.wait(max(0.0, next_dispatch - time.monotonic())):
                time.sleep(GATHER)
    finally:
        listener.close()
