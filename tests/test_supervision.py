"""The supervisor brings a failed loop back, says so in the heartbeat, and gives up only when hopeless."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import pytest
from django.db import OperationalError
from django.utils import timezone

from campaigns.models import Send, WorkerHeartbeat
from campaigns.operations.supervision import Loop, Supervisor
from campaigns.sending import dispatcher
from campaigns.sending.dispatcher import dispatcher_run
from harness.processes import wait_until
from tests.conftest import identify, track
from tests.world import rule_make


@pytest.fixture
def quick(settings: Any) -> None:
    settings.HEARTBEAT_INTERVAL = 0.05
    settings.LOOP_BACKOFF_MAX = 0.05


class Running:
    """A supervisor running some loops in a thread of the test, as `manage.py qcluster` runs them."""

    def __init__(self, supervisor: Supervisor, loops: Mapping[str, Loop]) -> None:
        self.supervisor = supervisor
        self.stop = threading.Event()
        self.code: int | None = None
        self._thread = threading.Thread(target=self._run, args=(loops,), daemon=True)
        self._thread.start()

    def _run(self, loops: Mapping[str, Loop]) -> None:
        self.code = self.supervisor.run(loops, stop_requested=self.stop, on_stop=lambda: None)

    def finish(self) -> int | None:
        self.stop.set()
        self._thread.join(30)
        return self.code

    def row(self) -> WorkerHeartbeat | None:
        return WorkerHeartbeat.objects.filter(name=self.supervisor.heartbeat.name).first()

    def loop(self, name: str) -> dict[str, Any]:
        row = self.row()
        return row.loops.get(name, {}) if row is not None else {}


@pytest.fixture
def supervised() -> Iterator[Callable[[Mapping[str, Loop]], Running]]:
    started: list[Running] = []

    def start(loops: Mapping[str, Loop]) -> Running:
        started.append(Running(Supervisor(cluster_alive=lambda: True), loops))
        return started[-1]

    yield start
    for running in started:
        running.finish()


def test_the_dispatcher_comes_back_after_an_error_and_matches_events_again(
    transactional_db, quick, api, sendgrid, supervised, monkeypatch, caplog
):
    rule_make("welcome", "user_signup")
    broken = threading.Event()
    broken.set()
    real_slice = dispatcher.events_process_slice

    def slice_until_repaired(**kwargs: Any) -> tuple[int, bool]:
        if broken.is_set():
            raise RuntimeError("injected: matching blew up")
        return real_slice(**kwargs)

    monkeypatch.setattr(dispatcher, "events_process_slice", slice_until_repaired)
    running = supervised({"dispatcher": functools.partial(dispatcher_run, heartbeat_name="")})

    failing = wait_until(lambda: (loop := running.loop("dispatcher")).get("failures") and loop, what="a failure beat")
    assert failing["error"] == "RuntimeError: injected: matching blew up"
    assert failing["ok_at"] is None
    assert "Traceback" in caplog.text and "loop dispatcher failed (1 in a row); restarting" in caplog.text

    repaired_at = timezone.now()
    broken.clear()
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    wait_until(lambda: Send.objects.filter(contact__user_id="u1").exists(), what="the event to be matched")
    fresh = wait_until(
        lambda: (loop := running.loop("dispatcher")).get("ok_at") and loop["failures"] == 0 and loop,
        what="a good pass in the heartbeat",
    )
    assert datetime.fromisoformat(fresh["ok_at"]) >= repaired_at
    assert running.finish() == 0
    row = running.row()
    assert row is not None and row.stopped_at is not None


def test_a_loop_that_keeps_failing_stops_the_supervisor_with_an_error(transactional_db, quick, settings, supervised):
    settings.LOOP_MAX_FAILURES = 3

    def always_broken(**_: Any) -> None:
        raise ValueError("a bug no restart cures")

    running = supervised({"sweeps": always_broken})
    wait_until(lambda: running.supervisor.failure, what="the supervisor to give up")

    assert running.finish() == 1
    assert (
        running.supervisor.failure
        == "loop sweeps failed 3 times in a row, last with ValueError('a bug no restart cures')"
    )
    row = running.row()
    assert row is not None and row.stopped_at is not None
    assert row.loops["sweeps"]["failures"] == 3


def test_a_database_outage_is_waited_out_longer_than_other_errors(transactional_db, quick, settings, supervised):
    settings.LOOP_MAX_FAILURES = 2
    outage = iter(range(6))
    passes = threading.Event()

    def database_restarting(*, should_stop: Callable[[], bool], on_pass: Callable[[], None]) -> None:
        if next(outage, None) is not None:
            raise OperationalError("server closed the connection unexpectedly")
        on_pass()
        passes.set()
        while not should_stop():
            passes.wait(0.01)

    running = supervised({"dispatcher": database_restarting})
    wait_until(lambda: passes.is_set(), what="the loop to work once the database is back")

    assert running.supervisor.failure == ""
    assert running.finish() == 0
    row = running.row()
    assert row is not None and row.loops["dispatcher"]["failures"] == 0
    assert row.loops["dispatcher"]["error"] == "OperationalError: server closed the connection unexpectedly"


def test_a_database_outage_longer_than_the_patience_stops_the_supervisor(transactional_db, quick, settings, supervised):
    settings.LOOP_DATABASE_PATIENCE = 0.2

    def database_gone(**_: Any) -> None:
        raise OperationalError("could not connect to server")

    running = supervised({"dispatcher": database_gone})
    wait_until(lambda: running.supervisor.failure, what="the supervisor to give up")

    assert running.finish() == 1
    assert "loop dispatcher failed" in running.supervisor.failure
