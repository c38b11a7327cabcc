"""A django-q2 cluster whose workers stall is restarted, and the email it held goes out.

A worker killed while it waits for a task dies holding the task queue's lock; the workers django-q2
starts in its place wait for that lock for ever (campaigns.operations.cluster_watch). The end-to-end
test makes exactly that happen to a real `manage.py qcluster`: with every worker idle, one of them
waits inside the queue's read holding its lock, and all of them are killed at once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.db import connection

from campaigns.operations.cluster_watch import StallWatch, cluster_processes_kill
from harness.processes import (
    database_sessions_wait,
    database_url,
    process_env,
    qcluster_ready,
    qcluster_start,
    wait_until,
)
from harness.sendgrid_server import API_KEY
from tests.conftest import identify, track
from tests.test_worker_process import session_processes
from tests.world import rule_make


def test_tasks_held_with_none_started_for_the_bound_is_a_stall():
    watch = StallWatch(stall_after=10)
    assert not watch.stalled(held=True, started_at=0.0, now=100.0)
    assert not watch.stalled(held=True, started_at=0.0, now=109.9)
    assert watch.stalled(held=True, started_at=0.0, now=110.0)


def test_a_task_taken_meanwhile_starts_the_count_again():
    watch = StallWatch(stall_after=10)
    watch.stalled(held=True, started_at=0.0, now=100.0)
    # A worker started one at 105: busy workers, not stalled ones, until 115.
    assert not watch.stalled(held=True, started_at=105.0, now=114.0)
    assert watch.stalled(held=True, started_at=105.0, now=115.0)


def test_nothing_held_is_never_a_stall_and_ends_the_wait():
    watch = StallWatch(stall_after=10)
    watch.stalled(held=True, started_at=0.0, now=100.0)
    assert not watch.stalled(held=False, started_at=0.0, now=120.0)
    # Tasks held again: counted from now, not from the first time.
    assert not watch.stalled(held=True, started_at=0.0, now=121.0)
    assert not watch.stalled(held=True, started_at=0.0, now=130.0)
    assert watch.stalled(held=True, started_at=0.0, now=131.0)


def test_the_bound_must_exceed_the_longest_a_task_may_run(settings):
    settings.CLUSTER_STALL_AFTER = settings.Q_CLUSTER["timeout"]
    assert "triggermail.E012" in [message.id for message in run_checks()]
    settings.CLUSTER_STALL_AFTER = settings.Q_CLUSTER["timeout"] + 1
    assert "triggermail.E012" not in [message.id for message in run_checks()]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the cluster's processes are found in /proc")
def test_killing_the_sentinel_ends_every_process_under_it():
    # A tree like a cluster's, in a session of its own: a parent, two children, a grandchild.
    sleep = f"[sys.executable, '-c', {'import time; time.sleep(60)'!r}]"
    child = f"import subprocess, sys, time; subprocess.Popen({sleep}); time.sleep(60)"
    parent_code = (
        f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]);"
        f" subprocess.Popen({sleep}); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], start_new_session=True)
    try:
        wait_until(lambda: len(session_processes(parent.pid)) == 4, what="the tree to start")
        cluster_processes_kill(parent.pid)
        parent.wait(timeout=5)
        wait_until(lambda: not session_processes(parent.pid), what="every process of the tree to end")
    finally:
        if parent.poll() is None:
            parent.kill()


def worker_pids(log: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"ready for work at (\d+)", log)]


@pytest.mark.e2e
@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_cluster_whose_workers_stalled_is_restarted_and_the_email_goes_out(
    transactional_db, api, sendgrid_server, tmp_path, broker
):
    rule_make("welcome", "user_signup")
    env = process_env(
        database_url=database_url(connection.settings_dict),
        secret_key=settings.SECRET_KEY,
        sendgrid_url=sendgrid_server.url,
        api_key=API_KEY,
    )
    # Short bounds in the order the system checks ask: provider < task timeout < stall, retry.
    env.update(Q_WORKERS="3", Q_TIMEOUT="6", Q_RETRY="8", CLUSTER_STALL_AFTER="7", Q_BROKER=broker)
    if broker == "redis":
        # A queue of its own on the machine's Redis.
        env.update(REDIS_URL="redis://127.0.0.1:6379/0", Q_CLUSTER_NAME=f"stall-{uuid.uuid4().hex[:8]}")
    worker = qcluster_start(env=env, log_dir=tmp_path)
    try:
        qcluster_ready(worker)
        wait_until(lambda: len(worker_pids(worker.log())) >= 3, what="the cluster's three workers")
        for pid in worker_pids(worker.log()):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: worker.log().count("reincarnated worker") >= 3, what="the sentinel to replace them")
        sendgrid_server.reset()
        api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
        wait_until(
            lambda: sendgrid_server.accepted,
            what="the welcome email, after the stalled cluster was restarted",
            processes=[worker],
            timeout=60,
        )
        assert "the cluster is stalled" in worker.log()
        assert [message.to for message in sendgrid_server.accepted] == [["u1@example.com"]]
    finally:
        worker.stop(timeout=10)
        print(worker.log())
    database_sessions_wait()
