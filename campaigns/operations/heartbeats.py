"""Worker heartbeats: each qcluster says it is alive, how its loops fare, and takes over a dead one's work.

Every `manage.py qcluster` process owns one WorkerHeartbeat row. Its loops report each good pass and
each failure to a LoopStatus in memory; a thread of its own writes that status with `beat_at` every
HEARTBEAT_INTERVAL, so a loop stuck in an endless computation shows as an old `ok_at` under a fresh
`beat_at`. Readers (/readyz, metrics, the Admin) judge a loop fresh when its `ok_at` is within
HEARTBEAT_STALE_AFTER of now and the row's `stopped_at` is null; times are ISO 8601 with their zone.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db.models import Q
from django.utils import timezone

from campaigns.models import WorkerHeartbeat
from campaigns.sending.queueing import held_sends_requeue

logger = logging.getLogger(__name__)

# A row stopped, or silent, for this long says nothing any reader still needs.
HEARTBEAT_RETENTION = timedelta(days=1)


class LoopStatus:
    """What each loop of this process last reported; shared by the loops' threads and the heartbeat."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loops: dict[str, dict[str, Any]] = {}

    def ok(self, name: str) -> None:
        # The last error stays until the next one: "failures": 0 says it is over, and a person
        # looking at a loop that recovered still sees what went wrong.
        with self._lock:
            loop = self._loops.setdefault(name, {"error": ""})
            loop.update(ok_at=timezone.now().isoformat(), failures=0)

    def failed(self, name: str, error: BaseException) -> int:
        """Record a failure of this loop; return how many it has had in a row."""
        summary = f"{type(error).__name__}: {error}".splitlines()[0][:200]
        with self._lock:
            loop = self._loops.setdefault(name, {"ok_at": None, "failures": 0, "error": ""})
            loop["failures"] += 1
            loop["error"] = summary
            return int(loop["failures"])

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: dict(loop) for name, loop in self._loops.items()}


def heartbeat_name() -> str:
    """hostname:pid:random: unique per process start, even where every container's pid is 1."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def heartbeat_write(*, name: str, loops: dict[str, dict[str, Any]], now: datetime) -> None:
    _, created = WorkerHeartbeat.objects.update_or_create(
        name=name,
        # A host that was only frozen (taken over meanwhile) and beats again can die again later:
        # its next silence must be noticed too.
        defaults={"beat_at": now, "loops": loops, "recovered_at": None},
        create_defaults={
            "beat_at": now,
            "loops": loops,
            "started_at": now,
            "hostname": name.split(":", 1)[0],
            "pid": os.getpid(),
        },
    )
    if created:
        logger.info("worker heartbeat %s started", name)


def heartbeat_stop(*, name: str, loops: dict[str, dict[str, Any]], now: datetime) -> None:
    """A clean shutdown: the row stays, marked stopped, so that no host takes over its work."""
    WorkerHeartbeat.objects.filter(name=name).update(beat_at=now, stopped_at=now, loops=loops)


def dispatcher_beat(*, name: str, at: datetime, stopped: bool = False) -> None:
    """Write `name`'s row as a host whose dispatcher completed a pass at `at` (and, with `stopped`,
    then shut down). What the supervisor's thread writes, for the health pages' tests and benchmark."""
    loops = {"dispatcher": {"ok_at": at.isoformat(), "failures": 0, "error": ""}}
    heartbeat_write(name=name, loops=loops, now=at)
    if stopped:
        heartbeat_stop(name=name, loops=loops, now=at)


def heartbeats_prune(*, now: datetime) -> int:
    old = now - HEARTBEAT_RETENTION
    deleted, _ = WorkerHeartbeat.objects.filter(Q(stopped_at__lt=old) | Q(beat_at__lt=old)).delete()
    return deleted


def dead_hosts_recover(*, own_name: str, now: datetime) -> int:
    """Re-queue the sends that hosts which stopped beating may have held; return how many.

    A host that dies takes with it the delivery tasks in its memory (the Redis broker hands a task
    to one cluster, which keeps it there until a worker runs it) or holds their rows for the ORM
    broker's `retry` lease. Any scheduled send queued before the dead host was last seen may be one
    of them, whichever host queued it: each is queued again now. A send whose first task is still
    alive elsewhere is then queued twice, which is harmless: claiming moves a send from `scheduled`
    to `sending` by a conditional update under a row lock, so exactly one task gets to send it.
    """
    stale = now - timedelta(seconds=settings.HEARTBEAT_STALE_AFTER)
    dead = WorkerHeartbeat.objects.filter(stopped_at__isnull=True, recovered_at__isnull=True, beat_at__lt=stale)
    requeued = 0
    for host in dead.exclude(name=own_name).only("pk", "name", "beat_at"):
        # One host takes over each dead one; the others find the row already handled.
        if not WorkerHeartbeat.objects.filter(pk=host.pk, recovered_at__isnull=True).update(recovered_at=now):
            continue
        # The host may have lived (and taken tasks) until just before its next beat was due.
        held_before = host.beat_at + timedelta(seconds=settings.HEARTBEAT_INTERVAL)
        count = held_sends_requeue(held_before=held_before, now=now)
        requeued += count
        logger.warning("worker %s stopped beating at %s; queued again %d sends it may have held", host.name,
                       host.beat_at.isoformat(), count)  # fmt: skip
    return requeued


class Heartbeat:
    """The thread that writes this process's row every HEARTBEAT_INTERVAL, whatever its loops do."""

    def __init__(self, status: LoopStatus) -> None:
        self.status = status
        self.name = heartbeat_name()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and mark the row stopped (a clean shutdown, whatever the exit code)."""
        self._stop.set()
        self._thread.join(settings.HEARTBEAT_INTERVAL + 5)
        try:
            heartbeat_stop(name=self.name, loops=self.status.snapshot(), now=timezone.now())
        except DatabaseError:
            # The row then goes stale and the other hosts re-queue what this one queued: harmless.
            logger.warning("could not mark the worker heartbeat %s stopped", self.name, exc_info=True)

    def _run(self) -> None:
        # Bounded by the stop event. The thread must outlive any error: a host that cannot write its
        # beat looks dead to the others, which only costs them a re-queue.
        while True:
            try:
                close_old_connections()
                heartbeat_write(name=self.name, loops=self.status.snapshot(), now=timezone.now())
            except Exception:
                logger.warning("could not write the worker heartbeat %s", self.name, exc_info=True)
            if self._stop.wait(settings.HEARTBEAT_INTERVAL):
                return
