"""What every phase shares: the run's databases, provider, monitor, and the results gathered so far."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.database import Databases, database_url
from bench.deploy import Deployment, bench_env
from bench.monitor import Mark, Monitor
from bench.profile import Profile
from bench.provider import ProviderServer
from bench.verify import Check

# The share of the machine taken by workloads other than the benchmark's above which a row is flagged.
NOISY = 0.2


@dataclass
class Row:
    """One line of the results table."""

    id: str
    measure: str
    value: str
    baseline: str = "-"
    ratio: str = "-"
    target: str = "-"
    met: str = "-"


@dataclass
class Run:
    profile: Profile
    databases: Databases
    template: str
    write_key: str
    secret_key: str
    provider: ProviderServer
    monitor: Monitor
    log_dir: Path
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    cpu: list[tuple[str, dict[str, float], float]] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    # Every address an event was posted for, acknowledged or not: anything else at the provider
    # was never asked for.
    attempted: set[str] = field(default_factory=set)
    unexpected: int = 0
    # P5's samples (bench.sustained.Sample), for the report's timeline plot.
    timeline: list[Any] = field(default_factory=list)
    # Rates a later phase compares against (the peer phase reads S's "S 1 host" emails/s).
    rates: dict[str, float] = field(default_factory=dict)
    # The phases asked for (empty: all) and those done.
    only: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)

    def wants(self, phase: str) -> bool:
        return (not self.only or phase in self.only) and phase not in self.done

    def say(self, text: str) -> None:
        print(f"bench: {text}", flush=True)

    def detail(self, text: str) -> None:
        self.details.append(text)
        self.say(text)

    def database(self, label: str) -> tuple[str, str]:
        """A fresh copy of the migrated, seeded template: (name, URL)."""
        name = self.databases.create(label, template=self.template)
        return name, database_url(name)

    def env(self, url: str, **extra: str) -> dict[str, str]:
        env = bench_env(
            database_url=url, secret_key=self.secret_key, sendgrid_url=self.provider.url, api_key=self.provider.api_key
        )
        env.update(extra)
        return env

    @contextlib.contextmanager
    def deployment(
        self, label: str, *, web: bool = True, hosts: int = 1, env: dict[str, str] | None = None
    ) -> Iterator[Deployment]:
        """Processes on a database of their own, watched by the monitor, stopped and dropped after."""
        name, url = self.database(label)
        log_dir = self.log_dir / label
        log_dir.mkdir(exist_ok=True)
        deployment = Deployment(env=self.env(url, **(env or {})), log_dir=log_dir)
        self.monitor.database = name
        self.monitor.roots["web"] = lambda: [p.popen.pid for p in deployment.webs if p.alive]
        self.monitor.roots["worker"] = lambda: [p.popen.pid for p in deployment.hosts if p.alive]
        try:
            if web:
                deployment.web_start()
            if hosts:
                deployment.hosts_start(hosts)
            yield deployment
        finally:
            deployment.stop()
            self.monitor.database = ""
            self.databases.drop(name)

    def cpu_record(self, phase: str, start: Mark, end: Mark) -> dict[str, float]:
        """The CPU used between the marks, by component; a phase recorded again (P2's rounds) adds up."""
        used = self.monitor.cpu_between(start, end)
        wall = end.at - start.at
        for n, (recorded, before, before_wall) in enumerate(self.cpu):
            if recorded == phase:
                total = {name: before.get(name, 0.0) + used.get(name, 0.0) for name in before.keys() | used.keys()}
                self.cpu[n] = (phase, total, before_wall + wall)
                return used
        self.cpu.append((phase, used, wall))
        return used

    def noise(self, *phases: str) -> str:
        """A warning for the table when other workloads took a fifth of the cores or more during
        these phases: a ratio against a baseline means little if only one side was crowded."""
        cores = os.cpu_count() or 1
        shares = [used["other"] / (wall * cores) for phase, used, wall in self.cpu if phase in phases and wall]
        if not shares or max(shares) < NOISY:
            return ""
        return " (noisy: other workloads took " + " / ".join(f"{s:.0%}" for s in shares) + " of the cores)"

    def queries_detail(self, phase: str, start: Mark, end: Mark) -> None:
        """Where PostgreSQL's time went: the statements its backends were most often seen running."""
        top = self.monitor.queries_between(start, end)
        if top:
            shapes = "; ".join(f"{share:.0%} `{shape}`" for shape, share in top)
            self.detail(f"{phase}: PostgreSQL backends were seen running (share of samples): {shapes}")
