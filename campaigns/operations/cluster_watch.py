"""Keeping django-q2's cluster taking tasks: a cluster whose workers stall is restarted.

django-q2's sentinel starts a new worker when one dies, but a worker that dies (kill -9, the OOM
killer) while it waits for a task dies holding the task queue's read lock, a semaphore shared
between the cluster's processes that nothing releases for it: every worker after it waits for that
lock for ever. The processes all run, the sentinel is up, and no task is taken while the broker's
queue grows (`make chaos-quick`, 2026-12-03: 131 due sends queued and never claimed for the last
three minutes of the run, until the run gave up). django-q2 knows the hazard (it ends a worker only
after a timeout, "otherwise we risk destabilizing the queues") but cannot mend a queue once it is
broken.

So the cluster notes, in memory it shares with the qcluster's main process, when its pusher takes
tasks from the broker and when a worker starts one (triggermail.task_clock), and the main process
looks every WATCH_EVERY seconds: tasks are held when the broker says some wait or the cluster took
one that no worker has started since. Held for CLUSTER_STALL_AFTER seconds with no task started
meanwhile, the cluster is stalled: it is logged (CRITICAL) and counted
(`triggermail_cluster_restarts` in the worker's metrics), every process of the cluster is killed and
a new cluster is started in the same process. No task runs longer than
Q_TIMEOUT (django-q2 ends it), so a bound above that cannot mistake busy workers for stalled ones
(a system check holds it there). Nothing is lost with the old processes: a task they had taken from
the broker comes back (the ORM broker's lease lapses; with Redis the dispatcher queues a send again
after Q_RETRY), and the claim makes a send go out once however often it is queued.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django_q.brokers import get_broker
from django_q.cluster import Cluster
from django_q.signals import pre_execute

from triggermail import task_clock
from triggermail.metrics import cluster_restart_count

logger = logging.getLogger(__name__)

# How often the main process looks whether tasks are held.
WATCH_EVERY = 1.0


@dataclass
class StallWatch:
    """Tells a stalled cluster from samples of whether tasks are held (waiting, or taken and not started)."""

    stall_after: float
    # Since when tasks have been held without a break (None: none is).
    held_since: float | None = None

    def stalled(self, *, held: bool, started_at: float, now: float) -> bool:
        """True when tasks have been held `stall_after` seconds and none was started in that time."""
        if not held:
            self.held_since = None
            return False
        if self.held_since is None:
            self.held_since = now
        return now - max(self.held_since, started_at) >= self.stall_after

    def restarted(self) -> None:
        self.held_since = None


class ClusterKeeper:
    """The qcluster's django-q2 cluster: started, watched from the main thread, restarted when it stalls.

    `on_signal` is called for SIGTERM and SIGINT; django-q2 puts its own handlers in place whenever
    a cluster is made, so they are set again after each (see the qcluster command for why).
    """

    def __init__(self, *, on_signal: Callable[[], None], stall_after: float | None = None) -> None:
        self.on_signal = on_signal
        # In the main process, before any cluster forks: every worker inherits the receiver.
        pre_execute.connect(task_clock.started_stamp, weak=False, dispatch_uid="triggermail-task-started")
        self.watch = StallWatch(settings.CLUSTER_STALL_AFTER if stall_after is None else stall_after)
        self.restarts = 0
        self.cluster = self._cluster()
        self._broker: Any = None
        self._next_look = 0.0

    def _cluster(self) -> Cluster:
        cluster = Cluster()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.on_signal())
        return cluster

    def start(self) -> None:
        self.cluster.start()

    def alive(self) -> bool:
        return self.cluster.sentinel is not None and self.cluster.sentinel.is_alive()

    def stop(self) -> None:
        if self.alive():
            self.cluster.stop()

    def check(self) -> None:
        """Every WATCH_EVERY seconds (called more often by the supervisor): restart a stalled cluster."""
        now = time.monotonic()
        if now < self._next_look:
            return
        self._next_look = now + WATCH_EVERY
        started_at = task_clock.started_at()
        # Taken by this cluster and not started since: no need to ask the broker.
        held = task_clock.pulled_at() > started_at
        waiting = 0
        if not held:
            try:
                waiting = self._waiting()
            except Exception as error:  # a broker that cannot answer tells nothing about the workers
                logger.warning("could not ask the broker how many tasks wait: %r", error)
                return
        if self.watch.stalled(held=held or waiting > 0, started_at=started_at, now=now):
            self.restart(waiting=waiting)

    def _waiting(self) -> int:
        if self._broker is None:
            self._broker = get_broker()
        return int(self._broker.queue_size())

    def restart(self, *, waiting: int) -> None:
        logger.critical(
            "django-q2's workers started no task for %.0f s while tasks waited (%s): the cluster is "
            "stalled (a worker killed while it held the task queue's lock?); restarting it",
            time.monotonic() - max(self.watch.held_since or 0.0, task_clock.started_at()),
            f"{waiting} in the broker" if waiting else "taken by this cluster",
        )
        old = self.cluster
        if old.sentinel is not None and old.sentinel.pid is not None:
            cluster_processes_kill(old.sentinel.pid)
            old.sentinel.join(timeout=5)
        # The new cluster's processes are forked from this thread: they must not share its database
        # connection (closing theirs would end this one's session too).
        connections.close_all()
        self.cluster = self._cluster()
        self.cluster.start()
        # What the old cluster had taken went with it: the new one holds nothing yet.
        task_clock.started_stamp()
        self.restarts += 1
        cluster_restart_count("stalled")
        self.watch.restarted()


def cluster_processes_kill(sentinel_pid: int) -> None:
    """SIGKILL the sentinel and every process under it (its pusher, monitor and workers).

    The sentinel is stopped first (SIGSTOP), so that it starts no new worker meanwhile; then the
    processes under it are read from /proc while it still is their parent (an orphan is adopted by
    another) and all are killed. Where there is no /proc only the sentinel is killed.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(sentinel_pid, signal.SIGSTOP)
    under = _descendants(sentinel_pid) if Path("/proc").is_dir() else []
    for pid in [sentinel_pid, *under]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name (in parentheses) may hold spaces; the parent's pid follows the state.
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found
