"""S: past one machine — 1 qcluster host vs 2 on one PostgreSQL database with the Redis broker.

The multi-host configuration is N web processes and N `manage.py qcluster` hosts sharing one
PostgreSQL and one Redis (same Q_CLUSTER_NAME and SECRET_KEY, as chaos/ runs it). What limits it
is what they share; this phase measures the worker side, the part that must scale out:

1. with no worker running, a backlog of events that each trigger an email is posted through
   the API (django-q2 tasks wait in Redis), then the web process is stopped so the hosts get
   every core;
2. 1 (then, on a fresh database, 2) qcluster hosts start; delivered emails/s is measured
   between the 10% and 90% marks of the backlog's deliveries, leaving out start-up and tail.

On this machine both hosts share the same 2 cores, so the ratio shows what a second host adds
when CPU does not grow with it: contention, not capacity. The CPU seconds per email of the
workers and of PostgreSQL, also printed, are what carries to several machines: each host brings
its own cores for the worker part, while PostgreSQL's part accumulates on the one database.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import redis

from bench import payloads
from bench.context import Row, Run
from bench.loadgen import Target, closed_loop, run_async
from bench.monitor import MACHINE, Mark
from bench.verify import check

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def _backlog_post(run: Run, base_url: str, prefix: str, events: int) -> list[str]:
    """Post `events` emailing events in batches of 100, as fast as ingest takes them; the acknowledged users."""
    target = Target.from_url(base_url, run.write_key)
    batches = payloads.batches(prefix, size=100, event=payloads.NOW_EVENT, with_email=True)
    planned = [next(batches) for _ in range(max(1, events // 100))]
    for users, _body in planned:
        run.attempted.update(payloads.email_of(u) for u in users)
    acked: list[str] = []

    def on_answer(index: int, status: int) -> None:
        if status == 200:
            acked.extend(planned[index][0])

    requests = iter([(target.request("/v1/batch", body), len(users)) for users, body in planned])
    result = run_async(closed_loop(target, requests, connections=4, duration=120, on_answer=on_answer))
    if result.failed:
        run.detail(f"S: {result.failed} backlog batches were refused {result.statuses}; their events are left out")
    return acked


@dataclass(frozen=True)
class Window:
    """Steady delivery between the 10% and 90% marks of a backlog's emails."""

    hosts: int
    emails: int  # delivered inside the window
    seconds: float
    cpu: dict[str, float]  # CPU seconds per component inside the window
    delivered: int  # by the end of the wait

    @property
    def rate(self) -> float:
        return self.emails / self.seconds if self.seconds > 0 else 0.0

    def per_thousand(self, component: str) -> float:
        return self.cpu.get(component, 0.0) / self.emails * 1000 if self.emails else 0.0


def _window_measure(run: Run, hosts: int, prefix: str, total: int, timeout: float) -> Window:
    """Wait for the backlog's emails, marking CPU at 10% and 90% of them.

    Start-up (importing Django, forking workers) and the tail stay outside the window, so the
    rate and the CPU seconds per email are those of steady work.
    """
    ledger, deadline = run.provider.ledger, time.monotonic() + timeout
    low: tuple[Mark, int] | None = None
    high: tuple[Mark, int] | None = None
    while True:
        ledger.read()
        delivered = ledger.prefixes[prefix]
        if low is None and delivered >= 0.1 * total:
            low = (run.monitor.mark(), delivered)
        if high is None and delivered >= 0.9 * total:
            high = (run.monitor.mark(), delivered)
        if delivered >= total or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if low is None:
        return Window(hosts, 0, 0.0, {}, delivered)
    if high is None:
        high = (run.monitor.mark(), delivered)
    cpu = run.monitor.cpu_between(low[0], high[0])
    return Window(hosts, high[1] - low[1], high[0].at - low[0].at, cpu, delivered)


def _cpu_phase(hosts: int) -> str:
    return f"S {hosts} host(s), start-up included"


def _queue_clear(name: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"django_q:{name}*"):
        client.delete(key)


def scaling_run(run: Run, hosts: int) -> Window:
    prefix, name = f"s{hosts}", f"tm-bench-{run.databases.run_id}-{hosts}"
    env = {"Q_BROKER": "redis", "REDIS_URL": REDIS_URL, "Q_CLUSTER_NAME": name}
    try:
        with run.deployment(f"scale{hosts}", hosts=0, env=env) as deployment:
            users = _backlog_post(run, deployment.base_url, prefix, run.profile.scaling_events)
            deployment.webs_stop()
            start = run.monitor.mark()
            deployment.hosts_start(hosts)
            window = _window_measure(run, hosts, prefix, len(users), run.profile.scaling_timeout)
            run.cpu_record(_cpu_phase(hosts), start, run.monitor.mark())
            url = deployment.env["DATABASE_URL"]
            run.checks.append(check(f"S ({hosts} host)", url=url, ledger=run.provider.ledger, users=users))
    finally:
        _queue_clear(name)
    return window


def scaling_phase(run: Run) -> None:
    if not run.wants("S"):
        return
    counts = run.profile.scaling_hosts
    run.say(f"S: {' vs '.join(map(str, counts))} qcluster host(s), Redis broker")
    windows = [scaling_run(run, hosts) for hosts in counts]
    first, last = windows[0], windows[-1]
    ratio = last.rate / first.rate if first.rate and len(windows) > 1 else 0.0
    # The peer phase (bench/peer.py) compares its drain with one host's.
    for one in (w for w in windows if w.hosts == 1):
        run.rates["S 1 host"] = one.rate
        run.rates.update({f"S 1 host {c} s/1000": one.per_thousand(c) for c in ("worker", "postgres")})
    run.rows.append(
        Row(
            id="S",
            measure=f"{' vs '.join(map(str, counts))} qcluster host(s) (Redis broker, one PostgreSQL, same 2 cores), "
            f"emails/s draining a {run.profile.scaling_events:,}-event backlog",
            baseline=f"{first.hosts} host(s): {first.rate:,.0f} emails/s",
            value=f"{last.hosts} host(s): {last.rate:,.0f} emails/s" + run.noise(*(_cpu_phase(n) for n in counts)),
            ratio=f"{ratio:.2f}" if ratio else "-",
            target="reported",
        )
    )
    for window in windows:
        run.detail(
            f"S: {window.hosts} host(s): {window.delivered:,} emails delivered; {window.emails:,} in the 10-90% "
            f"window ({window.seconds:.1f} s); CPU per 1,000 emails: "
            + ", ".join(f"{name} {window.per_thousand(name):.2f} s" for name in _components(window))
            + f", whole machine {window.per_thousand(MACHINE):.2f} s"
        )
    worker, database = last.per_thousand("worker") / 1000, last.per_thousand("postgres") / 1000
    if worker > 0 and database > 0:
        run.detail(
            f"S: extrapolation (not measured here): a worker core delivers ~{1 / worker:,.0f} emails/s and a "
            f"PostgreSQL core serves ~{1 / database:,.0f} emails/s; on separate machines each host brings its "
            f"own cores, so N hosts scale roughly linearly until the one database's cores are busy, at about "
            f"{worker / database:.1f} worker cores per PostgreSQL core"
        )


def _components(window: Window) -> list[str]:
    """The worker and PostgreSQL first (what carries to other machines), then the rest measured."""
    first = ["worker", "postgres"]
    return first + sorted(c for c in window.cpu if c not in first and c != MACHINE)
