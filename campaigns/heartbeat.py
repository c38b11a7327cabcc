"""The dispatcher's heartbeat: one WorkerHeartbeat row per qcluster process, rewritten every
HEARTBEAT_INTERVAL seconds, which /readyz, the metrics and the Admin index read.

A minimal writer: the supervisor (another branch) will write the same row from its own thread with
the same contract — `loops["dispatcher"]["ok_at"]` is the ISO time of the loop's last completed
pass, `stopped_at` is set on a clean shutdown.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from campaigns.models import WorkerHeartbeat


@dataclass
class Heartbeat:
    """This process's row, and when it was last written (monotonic seconds)."""

    name: str
    hostname: str
    pid: int
    started_at: datetime
    last_written: float = field(default=float("-inf"))

    def due(self) -> bool:
        return time.monotonic() - self.last_written >= settings.HEARTBEAT_INTERVAL


def heartbeat_start(*, now: datetime) -> Heartbeat:
    hostname = socket.gethostname()
    pid = os.getpid()
    return Heartbeat(name=f"{hostname}:{pid}:{secrets.token_hex(4)}", hostname=hostname, pid=pid, started_at=now)


def heartbeat_record(heartbeat: Heartbeat, *, now: datetime, stopped: bool = False) -> None:
    """Write the row: the dispatcher completed a pass at `now` (or, with `stopped`, shut down).

    One UPDATE; an INSERT only the first time. The row is this process's alone (its name carries
    the pid and a random part), so no other writer races it.
    """
    values: dict[str, object] = {"beat_at": now, "stopped_at": now if stopped else None}
    if not stopped:
        # Stopping is not a completed pass: the last pass's time stays as it was.
        values["loops"] = {"dispatcher": {"ok_at": now.isoformat(), "failures": 0, "error": ""}}
    if not WorkerHeartbeat.objects.filter(name=heartbeat.name).update(**values):
        identity = {"name": heartbeat.name, "hostname": heartbeat.hostname, "pid": heartbeat.pid}
        WorkerHeartbeat.objects.create(**identity, started_at=heartbeat.started_at, **values)
    heartbeat.last_written = time.monotonic()
