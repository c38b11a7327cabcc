"""Supervising the long-running loops of `manage.py qcluster`: restart after errors, exit when hopeless.

Each loop (the dispatcher, the sweeps) runs in a thread of its own. An unexpected exception is
logged with its traceback and the loop starts again after a backoff: 0.5 s, doubling up to
LOOP_BACKOFF_MAX. A loop that fails LOOP_MAX_FAILURES times in a row without one good pass makes the
whole process stop the django-q2 cluster and exit non-zero, so that its process manager (systemd,
Heroku, honcho) starts a fresh one: a bug that a restart of the loop does not cure is better met by
a clean process and a visible restart than by a worker that looks alive and does nothing. A database
error is expected to pass (databases restart and fail over), so it only ends the process once the
loop has been failing for LOOP_DATABASE_PATIENCE seconds; a new process would meet the same database.

The process also stops, non-zero, when django-q2's sentinel dies: its workers are gone with it. A
cluster that runs but takes no task is the cluster keeper's to mend (campaigns.operations.cluster_watch):
the main thread calls its check between looks at the stop request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from django.conf import settings
from django.db import Error as DatabaseError

from campaigns.operations.heartbeats import Heartbeat, LoopStatus

logger = logging.getLogger(__name__)

FIRST_BACKOFF = 0.5
# How often the main thread looks at the cluster and at the stop request.
WATCH_EVERY = 0.1
# How long a stopping loop may take to finish its pass before the process exits without it.
JOIN_TIMEOUT = 30.0


class Loop(Protocol):
    def __call__(self, *, should_stop: Callable[[], bool], on_pass: Callable[[], None]) -> None: ...


def loop_backoff(failures: int) -> float:
    """Seconds to wait before the next start of a loop that has failed this many times in a row."""
    return float(min(FIRST_BACKOFF * 2 ** min(failures - 1, 30), settings.LOOP_BACKOFF_MAX))


def loop_gives_up(error: BaseException, *, failures: int, failing_for: float) -> bool:
    """Whether a loop should stop trying and the process exit (see the module docstring)."""
    if isinstance(error, DatabaseError):
        return failing_for >= settings.LOOP_DATABASE_PATIENCE
    return failures >= settings.LOOP_MAX_FAILURES


class Supervisor:
    """Runs the loops and the heartbeat until a stop is requested, a loop gives up or the cluster dies."""

    def __init__(self, *, cluster_alive: Callable[[], bool], cluster_check: Callable[[], None] = lambda: None) -> None:
        self.cluster_alive = cluster_alive
        self.cluster_check = cluster_check
        self.status = LoopStatus()
        self.heartbeat = Heartbeat(self.status)
        # Why the process must exit non-zero; empty while all is well.
        self.failure = ""
        self._stop = threading.Event()

    def run(self, loops: Mapping[str, Loop], *, stop_requested: threading.Event, on_stop: Callable[[], None]) -> int:
        """Supervise until done; call `on_stop` (stop the cluster) and mark the heartbeat stopped; exit code.

        The main thread only polls `stop_requested` (set by a signal handler) and never waits on
        it: a handler that set an Event the interrupted thread was waiting on could deadlock.
        """
        self.heartbeat.start()
        threads = [
            threading.Thread(target=self._supervise, args=(name, loop), name=name, daemon=True)
            for name, loop in loops.items()
        ]
        for thread in threads:
            thread.start()
        try:
            while not self._stop.is_set() and not stop_requested.is_set():
                if not self.cluster_alive():
                    self._give_up("the django-q2 cluster stopped (its sentinel died)")
                self._cluster_check()
                time.sleep(WATCH_EVERY)
        finally:
            self._stop.set()
            deadline = time.monotonic() + JOIN_TIMEOUT
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            on_stop()
            self.heartbeat.stop()
        if self.failure:
            logger.critical("qcluster exits with status 1: %s; its process manager should start it again",
                            self.failure)  # fmt: skip
            return 1
        return 0

    def _cluster_check(self) -> None:
        try:
            self.cluster_check()
        except Exception as error:
            # Restarting a stalled cluster failed (it could not fork, say): a fresh process may.
            logger.exception("watching the django-q2 cluster failed")
            self._give_up(f"watching the django-q2 cluster failed with {error!r}")

    def _supervise(self, name: str, loop: Loop) -> None:
        failing_since = 0.0
        while not self._stop.is_set():
            try:
                loop(should_stop=self._stop.is_set, on_pass=lambda: self.status.ok(name))
                return
            except Exception as error:
                failures = self.status.failed(name, error)
                failing_since = time.monotonic() if failures == 1 else failing_since
                if loop_gives_up(error, failures=failures, failing_for=time.monotonic() - failing_since):
                    logger.exception("loop %s failed %d times in a row; giving up", name, failures)
                    self._give_up(f"loop {name} failed {failures} times in a row, last with {error!r}")
                    return
                backoff = loop_backoff(failures)
                logger.exception("loop %s failed (%d in a row); restarting in %.1fs", name, failures, backoff)
                self._stop.wait(backoff)

    def _give_up(self, reason: str) -> None:
        self.failure = self.failure or reason
        self._stop.set()
