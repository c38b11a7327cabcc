"""The dispatcher: the loop inside every qcluster that turns rows into work.

It matches new events the moment they are committed (woken by the ingest's NOTIFY on PostgreSQL,
see triggermail.wakeup, and looking every DISPATCH_INTERVAL seconds anyway), and queues due sends:
django-q2's scheduler wakes only every 30 s, so a send due at 10:00:00 would leave up to 30 s late.
Matching runs here, in one process per host, rather than as a task per ingest request: a task row
per request would cost more than the matching itself. Several clusters may run the loop at once:
events and sends are claimed by row lock (SKIP LOCKED) and state change, so they share the work.

The slow sweeps (in-flight sends that outlived their worker, unknown sends past their grace, the
days of partitions ahead on PostgreSQL, pruning) run in a loop of their own, so that a slow prune
never delays a due send. Both loops run under campaigns.operations.supervision, which restarts them
after an error and reports their passes in the heartbeat.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from campaigns.matching.processing import BATCH_SIZE, events_process_batch
from campaigns.operations.heartbeats import dead_hosts_recover, heartbeats_prune
from campaigns.sending.ambiguous import unknown_sends_resolve
from campaigns.sending.queueing import due_sends_queue, stale_sending_settle
from campaigns.sending.retention import records_prune
from triggermail.partitions import partitions_ensure_ahead
from triggermail.wakeup import Listener

logger = logging.getLogger(__name__)

SLOW_CHECKS_EVERY = 10.0
PRUNE_EVERY = 3600.0
# Partitions are made PARTITION_AHEAD_DAYS ahead: looking hourly (and at start-up) leaves days to spare.
PARTITIONS_EVERY = 3600.0
# How often the sweeps loop looks whether it should stop while it waits for its next pass.
STOP_CHECK = 0.2
# Matching a burst of events yields to the due-send dispatch after this long, then goes on.
PROCESS_SLICE = 0.5
# After a wake-up, wait this long for the events committed just after it. Under a steady stream of
# single track calls each wake-up would otherwise match one or two events, paying a batch's fixed
# cost (a dozen statements, a commit, a delivery task) per event; waiting turns that into one batch
# per 50 ms of events. At 200 single track calls/s (make bench --only P3, ORM broker) p99 went from
# 927 ms (no wait) to 555 ms (20 ms) to 382 ms (50 ms): less work per event leaves the cores idle
# sooner than the wait costs.
GATHER = 0.05


def stuck_sends_settle(*, now: datetime) -> None:
    settled = stale_sending_settle(now=now)
    if settled:
        logger.warning("%d in-flight sends outlived their worker and are now unknown", settled)
    resent, abandoned = unknown_sends_resolve(now=now)
    if resent:
        logger.warning("%d unknown sends had no webhook event while later sends did: resent", resent)
    if abandoned:
        logger.warning("%d unknown sends had no provider evidence in time and need a person", abandoned)


def _prune(*, now: datetime) -> None:
    logger.info("pruned %s and %d worker heartbeats", records_prune(now=now), heartbeats_prune(now=now))


def events_process_slice(*, seconds: float = PROCESS_SLICE) -> bool:
    """Match unprocessed events for up to `seconds`; True when more may be waiting."""
    deadline = time.monotonic() + seconds
    while events_process_batch() == BATCH_SIZE:
        if time.monotonic() >= deadline:
            return True
    return False


def dispatcher_run(
    *,
    should_stop: Callable[[], bool],
    on_pass: Callable[[], None] = lambda: None,
    interval: float | None = None,
    heartbeat_name: str = "",
) -> None:
    """Match events and queue due sends until told to stop; errors go to the caller (the supervisor).

    Every HEARTBEAT_INTERVAL it also looks for hosts that stopped beating and queues again the
    sends they may have held (campaigns.operations.heartbeats), so those go out within seconds.
    """
    interval = settings.DISPATCH_INTERVAL if interval is None else interval
    listener = Listener()
    next_dispatch = next_recovery = 0.0
    try:
        while not should_stop():
            close_old_connections()
            more = events_process_slice()
            started = time.monotonic()
            if started >= next_dispatch:
                due_sends_queue(now=timezone.now())
                next_dispatch = started + interval
            if started >= next_recovery:
                dead_hosts_recover(own_name=heartbeat_name, now=timezone.now())
                next_recovery = started + settings.HEARTBEAT_INTERVAL
            on_pass()
            if not more and listener.wait(max(0.0, next_dispatch - time.monotonic())):
                time.sleep(GATHER)
    finally:
        listener.close()


def sweeps_run(*, should_stop: Callable[[], bool], on_pass: Callable[[], None] = lambda: None) -> None:
    """Every SLOW_CHECKS_EVERY seconds settle stale sends and abandon old unknowns; make the partitions
    ahead at start-up and hourly; prune hourly."""
    # Not at start-up: a crash-looping worker must not prune on every restart.
    last_prune = time.monotonic()
    next_partitions = 0.0
    while not should_stop():
        close_old_connections()
        started = time.monotonic()
        prune = started - last_prune >= PRUNE_EVERY
        now = timezone.now()
        if started >= next_partitions:
            partitions_ensure_ahead()
            next_partitions = started + PARTITIONS_EVERY
        stuck_sends_settle(now=now)
        if prune:
            _prune(now=now)
        last_prune = started if prune else last_prune
        on_pass()
        while not should_stop() and time.monotonic() - started < SLOW_CHECKS_EVERY:
            time.sleep(STOP_CHECK)
