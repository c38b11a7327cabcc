"""`python -m bench.worker_cpu`: the worker's CPU per email, in one process, without the cluster around it.

S (bench.scaling) measures emails/s and CPU per email with every process on the shared cores; when
other work crowds the machine its window holds few emails and its figures wander. This measures the
same code path on its own: N events that each trigger an email are ingested (not measured), then this
process matches them (campaigns.matching, as the dispatcher does) and delivers their sends in
DELIVERY_CHUNK slices (campaigns.sending.delivery, as each django-q2 task does) to bench.sendgrid_fast.
What it counts is CPU time (user + system, every thread): of this process, of its PostgreSQL backend,
and of the SendGrid-compatible server; CPU time moves far less than wall time when the cores are shared.
django-q2's own work per task (unpickling, signing, the broker) is not in it; S has that.

    python -m bench.worker_cpu [--events 5000] [--repeat 3]

Exit status 1 when an email was not delivered exactly once.
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench import payloads
from bench.database import Databases, database_url, template_prepare
from bench.deploy import bench_env
from bench.provider import ProviderServer


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def _ingest(write_key: str, prefix: str, events: int) -> None:
    from django.test import Client

    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=auth)
    batches = payloads.batches(prefix, size=100, event=payloads.NOW_EVENT, with_email=True)
    for _ in range(events // 100):
        _users, body = next(batches)
        response = client.post("/v1/batch", data=body, content_type="application/json")
        assert response.status_code == 200, response.content


def _round(write_key: str, provider: ProviderServer, prefix: str, events: int) -> dict[str, float]:
    from django.db import connection
    from django.db.models import Count

    from campaigns.matching.processing import events_process_batch
    from campaigns.models import Send
    from campaigns.sending.delivery import sends_deliver
    from campaigns.sending.queueing import DELIVERY_CHUNK

    _ingest(write_key, prefix, events)
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = [int(cursor.fetchone()[0])]
    roots = {
        "worker": _cpu_self,
        "postgres": lambda: _cpu_of(backend),
        "provider": lambda: _cpu_of([provider.process.popen.pid]),
    }
    start, wall = {name: read() for name, read in roots.items()}, time.monotonic()
    while events_process_batch():
        pass
    matched = {name: read() - start[name] for name, read in roots.items()}
    ids = list(Send.objects.filter(state=Send.State.SCHEDULED).order_by("pk").values_list("pk", flat=True))
    for first in range(0, len(ids), DELIVERY_CHUNK):
        sends_deliver(ids[first : first + DELIVERY_CHUNK])
    used = {name: read() - start[name] for name, read in roots.items()}
    used["matching (worker)"] = matched["worker"]
    used["wall"] = time.monotonic() - wall
    used["emails"] = len(ids)
    states = Send.objects.filter(pk__in=ids).values_list("state").annotate(n=Count("pk"))
    print(f"round {prefix}: sends by state {dict(states)}")
    return used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="events (each one email) per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the first also warms up")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    databases = Databases()
    provider: ProviderServer | None = None
    try:
        url = database_url(databases.create("cpu"))
        secret_key = secrets.token_urlsafe(32)
        provider = ProviderServer.start(env=dict(os.environ), log_dir=Path(tempfile.mkdtemp()), latency=0.05)
        env = bench_env(database_url=url, secret_key=secret_key, sendgrid_url=provider.url, api_key=provider.api_key)
        # Queueing as S does: tasks go to Redis after commit, under a name of this run's own.
        name = f"tm-cpu-{databases.run_id}"
        env.update(
            Q_BROKER="redis",
            REDIS_URL="redis://127.0.0.1:6379/0",
            Q_CLUSTER_NAME=name,
            LOG_LEVEL="WARNING",
            Q_LOG_LEVEL="WARNING",
        )
        os.environ.update(env)
        # Django starts here, with the environment above.
        write_key = template_prepare(url)
        rounds = [_round(write_key, provider, f"c{n}", args.events) for n in range(args.repeat)]
        failed = _verify(provider, args.events * args.repeat)
        _queue_clear(name)
    finally:
        if provider is not None:
            provider.stop()
        from django.db import connections

        connections.close_all()
        databases.drop_all()
    for n, used in enumerate(rounds):
        emails = used["emails"] or 1
        parts = ", ".join(
            f"{k} {used[k] / emails * 1000:.3f} ms" for k in ("worker", "matching (worker)", "postgres", "provider")
        )
        print(f"round {n + 1}: {used['emails']:.0f} emails in {used['wall']:.1f} s; CPU per email: {parts}")
    return 1 if failed else 0


def _verify(provider: ProviderServer, expected: int) -> bool:
    # The server flushes its ledger every few tens of ms: a busy machine can delay the last lines.
    deadline = time.monotonic() + 10.0
    provider.ledger.read()
    while len(provider.ledger.entries) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        provider.ledger.read()
    deliveries = provider.ledger.entries
    keys = [d.key for d in deliveries]
    print(f"provider: {len(deliveries)} deliveries, {len(set(keys))} distinct keys, {expected} expected")
    return len(deliveries) != expected or len(set(keys)) != expected


def _queue_clear(name: str) -> None:
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    for key in client.scan_iter(f"django_q:{name}*"):
        client.delete(key)


if __name__ == "__main__":
    sys.exit(main())
