"""When this host's django-q2 cluster last took tasks from its broker, and last started one.

Two moments in memory shared by every process of a qcluster: made when this module is first
imported (the qcluster's main process imports it before django-q2 forks the cluster's processes,
which inherit it), written by the cluster's pusher when its broker hands it tasks
(triggermail.broker) and by a worker when it starts a task (django-q2's `pre_execute` signal), read
by the main process (campaigns.operations.cluster_watch). A task is started after it was taken, so
`pulled_at() > started_at()` means the cluster holds a task none of its workers has started.

Raw shared memory, with no lock: a process killed while stamping leaves nothing held (a lock shared
with a killed process is the very failure this serves to notice), and an aligned 8-byte write is
never seen half done. Times are time.monotonic(), one clock for every process of a machine.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import time
from typing import Any

_pulled = multiprocessing.RawValue(ctypes.c_double, 0.0)
_started = multiprocessing.RawValue(ctypes.c_double, 0.0)


def pulled_stamp() -> None:
    _pulled.value = time.monotonic()


def started_stamp(**_: Any) -> None:
    """A `pre_execute` receiver: a worker starts a task."""
    _started.value = time.monotonic()


def pulled_at() -> float:
    return float(_pulled.value)


def started_at() -> float:
    return float(_started.value)
