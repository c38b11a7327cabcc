"""Real `manage.py qcluster` processes: a hopeless worker exits non-zero, a dead host's work goes on.

What a process manager sees (an exit status, the last log lines) and what people get (the
SendGrid-compatible server's ledger) are asserted; the hosts share nothing with the test but the
database, the Redis broker and the provider's URL.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from campaigns.models import Send, WorkerHeartbeat
from chaos.faults import group_members
from harness.processes import (
    ManagedProcess,
    database_sessions_wait,
    database_url,
    process_env,
    processes_logs,
    qcluster_ready,
    qcluster_start,
    wait_until,
)
from harness.sendgrid_server import API_KEY, Accepted, Fault, SendGridServer
from tests.conftest import identify, track
from tests.world import rule_make

pytestmark = pytest.mark.e2e

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def worker_env(transactional_db: None, sendgrid_server: SendGridServer) -> dict[str, str]:
    sendgrid_server.reset()
    return process_env(
        database_url=database_url(connection.settings_dict),
        secret_key=settings.SECRET_KEY,
        sendgrid_url=sendgrid_server.url,
        api_key=API_KEY,
    )


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    for worker in started:
        worker.stop(timeout=10)
    print(processes_logs(started))
    database_sessions_wait()


def test_a_worker_whose_loop_keeps_failing_stops_its_cluster_and_exits_non_zero(worker_env, workers, tmp_path):
    # A grace period typed in the wrong unit passes the settings checks, but every sweep then
    # computes a date before year 1 and raises OverflowError: a bug no restart of the loop cures.
    worker_env.update(UNKNOWN_GRACE_SECONDS="1000000000000", LOOP_MAX_FAILURES="3")
    worker = qcluster_start(env=worker_env, log_dir=tmp_path)
    workers.append(worker)

    wait_until(lambda: not worker.alive, what="the worker to give up", timeout=60)

    assert worker.popen.returncode == 1
    log = worker.log()
    assert "loop sweeps failed (1 in a row); restarting in 0.5s" in log
    assert "OverflowError" in log and "Traceback" in log
    assert "loop sweeps failed 3 times in a row; giving up" in log
    assert "qcluster exits with status 1: loop sweeps failed 3 times in a row" in log
    # The cluster was stopped, not orphaned: no worker of it is left to take tasks.
    wait_until(lambda: not group_members(worker.popen.pid), what="the cluster's processes to exit", timeout=15)
    beat = WorkerHeartbeat.objects.get()
    assert beat.stopped_at is not None
    assert beat.loops["sweeps"]["failures"] == 3
    assert beat.loops["sweeps"]["error"].startswith("OverflowError")


def test_a_worker_whose_cluster_dies_exits_non_zero(worker_env, workers, tmp_path):
    worker = qcluster_start(env=worker_env, log_dir=tmp_path)
    workers.append(worker)
    qcluster_ready(worker)
    sentinel = next(pid for pid, ppid in group_members(worker.popen.pid).items() if ppid == worker.popen.pid)

    os.kill(sentinel, signal.SIGKILL)

    wait_until(lambda: not worker.alive, what="the worker to exit", timeout=30)
    assert worker.popen.returncode == 1
    assert "qcluster exits with status 1: the django-q2 cluster stopped (its sentinel died)" in worker.log()


SENDS = 150  # three delivery tasks of DELIVERY_CHUNK (50) sends
HUNG_CALL = 12.0  # seconds the provider holds the first call: the first host's only worker waits


@pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql", reason="multi-host")
def test_deliveries_held_by_a_killed_host_go_out_within_seconds_once(worker_env, workers, tmp_path, api, sendgrid):
    cluster = f"test-{uuid.uuid4().hex[:8]}"
    broker = redis.Redis.from_url(REDIS_URL)
    queue = f"django_q:{cluster}:q"  # django-q2's Redis list for this cluster
    # One worker per host and a provider timeout longer than the hung call: the first host's worker
    # waits on the first task while the host holds the other two.
    worker_env.update(
        Q_BROKER="redis",
        REDIS_URL=REDIS_URL,
        Q_CLUSTER_NAME=cluster,
        Q_WORKERS="1",
        PROVIDER_TIMEOUT=str(HUNG_CALL + 5),
    )
    rule_make("welcome", "user_signup")
    for start in range(0, SENDS, 50):
        users = [f"u{i}" for i in range(start, start + 50)]
        api.batch([m for u in users for m in (identify(u, f"{u}@example.com"), track("user_signup", u))])
    sendgrid.fail_next(Fault(kind="delay", delay=HUNG_CALL))
    first = qcluster_start(env=worker_env, log_dir=tmp_path, name="host-a")
    workers.append(first)

    def held() -> list[int]:
        """Sends queued and not yet claimed, once the Redis list is empty: in the first host's memory."""
        if not sendgrid.requests or broker.llen(queue):
            return []
        return list(
            Send.objects.filter(state=Send.State.SCHEDULED, enqueued_at__isnull=False).values_list("pk", flat=True)
        )

    wait_until(lambda: Send.objects.count() == SENDS and held(), what="the first host to hold tasks", processes=[first])
    second = qcluster_start(env=worker_env, log_dir=tmp_path, name="host-b")
    workers.append(second)
    qcluster_ready(second)
    holding = held()
    assert len(holding) >= 50, "the first host should still hold at least one whole task"

    os.killpg(first.popen.pid, signal.SIGKILL)
    killed_at = time.time()
    wanted = {str(pk) for pk in holding}

    def held_out() -> list[Accepted]:
        out = [a for a in list(sendgrid.accepted) if a.send_id in wanted]
        return out if {a.send_id for a in out} == wanted else []

    # The old way, re-queueing after the broker's retry lease, takes 120 s.
    out = wait_until(held_out, what="every held send to go out", timeout=20, processes=[second])
    recovered_in = max(a.received_at for a in out) - killed_at
    print(f"last held send out {recovered_in:.1f}s after the kill")
    assert recovered_in < settings.HEARTBEAT_STALE_AFTER + 10
    # The hung call finishes (accepted) too; then nothing may have gone out twice.
    wait_until(lambda: len(sendgrid.accepted) >= sendgrid.requests, what="the hung call to be accepted")
    assert [k for k, n in Counter(a.send_id for a in sendgrid.accepted).items() if n > 1] == []
    assert "stopped beating" in second.log()
