"""The liveness of the worker processes."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per running `manage.py qcluster` process, written by its supervisor every
    HEARTBEAT_INTERVAL seconds. A row whose `beat_at` is older than HEARTBEAT_STALE_AFTER belongs to a
    host that stopped (killed, frozen, cut off): health checks report it and the surviving hosts take
    over the work it held. `stopped_at` is set on a clean shutdown."""

    # hostname:pid:random, unique per process start.
    name = models.CharField(max_length=200, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    # Loop name → {"ok_at": ISO time of its last good pass, "failures": consecutive failures,
    # "error": the last error's one-line summary}.
    loops = models.JSONField(default=dict, blank=True)
    # When a live host re-queued the sends this one may have held after it stopped beating; set
    # once, by a conditional update, so that one host does it.
    recovered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-beat_at"]

    def __str__(self) -> str:
        return self.name
