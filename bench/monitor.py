"""Who used the 2 cores, and how much memory the web and worker processes held (P6).

A background thread samples every `interval` seconds, with psutil, the process trees of each
component: web (gunicorn masters and workers), worker (qcluster hosts and every process they
fork), postgres (the backends serving the benchmark's database, found in pg_stat_activity), redis
(the loopback redis-server), provider (bench.sendgrid_fast) and generator (this process: the load
generator and the harness).
The machine's total busy time is sampled too; what no component accounts for is "other" (other
PostgreSQL databases, anything else running on the box).

CPU time is kept per process id at its last sample, so a process that exits between two marks
still counts up to the last time it was seen; one born after a mark counts from zero.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil
import psycopg

from bench.database import ADMIN_URL

COMPONENTS = ("web", "worker", "postgres", "redis", "provider", "generator")
_VALUE_LIST = re.compile(r"\((?:\?(?:::\w+)?, )+\?(?:::\w+)?\)")
_COLUMN_LIST = re.compile(r'(?:"\w+"\.)?"\w+"(?:, (?:"\w+"\.)?"\w+")+')
_LITERALS = re.compile(r"'[^']*'|\$\d+|\b\d+(\.\d+)?\b|%s")
MACHINE = "machine"


def _tree(pids: list[int]) -> list[psutil.Process]:
    processes = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            processes += [root, *root.children(recursive=True)]
    return processes


def _named(process: psutil.Process, name: str) -> bool:
    try:
        return bool(process.name() == name)
    except psutil.Error:  # it ended meanwhile
        return False


def _redis_servers() -> list[int]:
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "redis-server"]


def query_shape(text: str) -> str:
    """A statement with its literals, value lists and column lists elided, short enough for a report line."""
    shape = _LITERALS.sub("?", " ".join(text.split()))
    shape = _VALUE_LIST.sub("(…)", shape)
    shape = _COLUMN_LIST.sub("…", shape)
    return shape[:140]


def _machine_busy() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


@dataclass(frozen=True)
class Mark:
    at: float
    cpu: dict[str, dict[int, float]]
    machine: float
    queries: Counter[str]


class Monitor:
    def __init__(self, *, interval: float = 0.5) -> None:
        self.interval = interval
        self.roots: dict[str, Callable[[], list[int]]] = {}
        self.database = ""
        self._cpu: dict[str, dict[int, float]] = {name: {} for name in COMPONENTS}
        # How often each statement shape was seen running: a sampling profile of PostgreSQL's work.
        self._queries: Counter[str] = Counter()
        self.rss: list[tuple[float, dict[str, int]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._admin: psycopg.Connection[tuple[Any, ...]] | None = None
        self.roots["generator"] = lambda: [os.getpid()]
        # The loopback Redis (the broker of S and chaos) is shared by everything on the machine: its
        # CPU is the broker's cost only while the benchmark is alone on the box.
        self.roots["redis"] = _redis_servers

    def start(self) -> Monitor:
        self._admin = psycopg.connect(ADMIN_URL, autocommit=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._admin is not None:
            self._admin.close()

    def _backends(self) -> list[int]:
        """The benchmark database's backends; their running statements are tallied on the way."""
        if not self.database or self._admin is None:
            return []
        try:
            rows = self._admin.execute(
                "SELECT pid, state, left(query, 300) FROM pg_stat_activity"
                " WHERE datname = %s AND backend_type = 'client backend'",
                (self.database,),
            ).fetchall()
        except psycopg.Error:
            return []
        for _pid, state, text in rows:
            if state == "active":
                self._queries[query_shape(text)] += 1
        return [int(r[0]) for r in rows]

    def _processes(self, name: str) -> list[psutil.Process]:
        if name == "postgres":
            return _tree(self._backends())
        if name == "generator":
            # This process and its wrk (P2's load); its other children belong to their own components.
            me = psutil.Process()
            return [me, *(child for child in me.children() if _named(child, "wrk"))]
        return _tree(self.roots[name]()) if name in self.roots else []

    def sample(self) -> None:
        now = time.time()
        rss: dict[str, int] = {}
        with self._lock:
            for name in COMPONENTS:
                total = 0
                for process in self._processes(name):
                    with contextlib.suppress(psutil.Error):
                        with process.oneshot():
                            times = process.cpu_times()
                            total += process.memory_info().rss
                        self._cpu[name][process.pid] = times.user + times.system
                rss[name] = total
            self.rss.append((now, rss))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def mark(self) -> Mark:
        self.sample()
        with self._lock:
            cpu = {n: dict(p) for n, p in self._cpu.items()}
            return Mark(time.time(), cpu, _machine_busy(), Counter(self._queries))

    @staticmethod
    def cpu_between(start: Mark, end: Mark) -> dict[str, float]:
        """CPU seconds per component (and machine, and other) between two marks."""
        used = {
            name: sum(total - start.cpu[name].get(pid, 0.0) for pid, total in end.cpu[name].items())
            for name in COMPONENTS
        }
        used[MACHINE] = end.machine - start.machine
        used["other"] = max(0.0, used[MACHINE] - sum(used[n] for n in COMPONENTS))
        return used

    @staticmethod
    def queries_between(start: Mark, end: Mark, top: int = 5) -> list[tuple[str, float]]:
        """The statements PostgreSQL was most often seen running between the marks, with their share."""
        seen = end.queries - start.queries
        total = sum(seen.values())
        return [(shape, n / total) for shape, n in seen.most_common(top)] if total else []

    def rss_peak(self, start: Mark, end: Mark) -> dict[str, int]:
        """Peak total RSS (bytes) of each component's processes, over the samples between the marks."""
        with self._lock:
            window = [r for t, r in self.rss if start.at <= t <= end.at]
        return {name: max((r.get(name, 0) for r in window), default=0) for name in COMPONENTS}
