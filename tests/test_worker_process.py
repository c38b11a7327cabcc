"""The worker process as process managers treat it: honcho, systemd and Heroku signal its group."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from harness.processes import (
    database_sessions_wait,
    database_url,
    process_env,
    qcluster_ready,
    qcluster_start,
    wait_until,
)
from harness.sendgrid_server import API_KEY

pytestmark = pytest.mark.e2e


def session_processes(session_id: int) -> list[int]:
    """Pids of every live (not zombie) process in a session."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, session = fields[0], int(fields[3])
        if session == session_id and state != "Z":
            pids.append(int(entry.name))
    return pids


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_worker_and_all_its_children_stop_when_their_process_group_is_signalled(
    transactional_db, sendgrid_server, tmp_path, signum
):
    env = process_env(
        database_url=database_url(connection.settings_dict),
        secret_key=settings.SECRET_KEY,
        sendgrid_url=sendgrid_server.url,
        api_key=API_KEY,
    )
    worker = qcluster_start(env=env, log_dir=tmp_path)
    try:
        qcluster_ready(worker)
        assert len(session_processes(worker.popen.pid)) > 2, "the cluster should have started its workers"
        os.killpg(worker.popen.pid, signum)
        wait_until(
            lambda: not session_processes(worker.popen.pid),
            what="the worker and every process it started to exit",
            timeout=20,
        )
    finally:
        worker.stop(timeout=5)
        print(worker.log())
    database_sessions_wait()
