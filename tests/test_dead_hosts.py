"""A host that stops beating: the sends it may have held are queued again at once, by one host, once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import time_machine
from django.utils import timezone
from django_q.models import OrmQ

from campaigns.models import Send, WorkerHeartbeat
from campaigns.operations.heartbeats import dead_hosts_recover, heartbeat_write, heartbeats_prune
from tests import baker_recipes
from tests.conftest import identify, track
from tests.steps import events_process_pending
from tests.world import queued_tasks, queued_tasks_run, rule_make

DELIVER = "campaigns.tasks.sends_deliver"


@pytest.fixture
def queued(api, sendgrid) -> tuple[datetime, Send]:
    """A welcome due and queued at T; its task was lost (in a host's memory), the row still scheduled."""
    rule_make("welcome", "user_signup")
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
        events_process_pending()
    send = Send.objects.get()
    assert send.enqueued_at == now
    OrmQ.objects.all().delete()
    return now, send


def host(name: str, *, beat_at: datetime, stopped: bool = False) -> WorkerHeartbeat:
    return baker_recipes.worker_heartbeat.make(
        name=name, hostname=name, pid=1, started_at=beat_at, beat_at=beat_at, stopped_at=beat_at if stopped else None
    )


def test_a_silent_host_gets_its_queued_sends_queued_again_within_seconds(queued, sendgrid, settings):
    now, send = queued
    host("dead:1:a", beat_at=now)
    later = now + timedelta(seconds=settings.HEARTBEAT_STALE_AFTER + 1)

    assert dead_hosts_recover(own_name="live:2:b", now=later) == 1

    assert queued_tasks() == [(DELIVER, ([send.pk],))]
    assert WorkerHeartbeat.objects.get(name="dead:1:a").recovered_at == later
    assert queued_tasks_run() == 1
    assert [m.to for m in sendgrid.accepted] == [["u1@example.com"]]
    # Without the heartbeat, the send would wait for the queue's retry lease.
    assert later < now + timedelta(seconds=settings.Q_CLUSTER["retry"])


def test_it_takes_over_a_dead_host_once(queued, settings):
    now, _ = queued
    host("dead:1:a", beat_at=now)
    later = now + timedelta(seconds=settings.HEARTBEAT_STALE_AFTER + 1)

    assert dead_hosts_recover(own_name="live:2:b", now=later) == 1
    assert dead_hosts_recover(own_name="live:3:c", now=later + timedelta(seconds=1)) == 0

    assert len(queued_tasks()) == 1


def test_a_frozen_host_that_beats_again_is_taken_over_again_when_it_dies(queued, settings):
    now, send = queued
    host("frozen:1:a", beat_at=now)
    stale = timedelta(seconds=settings.HEARTBEAT_STALE_AFTER + 1)
    assert dead_hosts_recover(own_name="live:2:b", now=now + stale) == 1
    heartbeat_write(name="frozen:1:a", loops={}, now=now + 2 * stale)
    OrmQ.objects.all().delete()  # its tasks died with it again

    assert dead_hosts_recover(own_name="live:2:b", now=now + 4 * stale) == 1

    assert queued_tasks() == [(DELIVER, ([send.pk],))]


def test_it_leaves_live_and_cleanly_stopped_hosts_and_sends_queued_after_the_last_beat(queued, settings):
    now, _ = queued
    stale = timedelta(seconds=settings.HEARTBEAT_STALE_AFTER)
    host("live:1:a", beat_at=now + stale)
    host("stopped:2:b", beat_at=now - stale, stopped=True)
    # Silent since well before the send was queued: it cannot have held it.
    host("long-dead:3:c", beat_at=now - 10 * stale)

    assert dead_hosts_recover(own_name="me:4:d", now=now + stale + timedelta(seconds=1)) == 0

    assert queued_tasks() == []


def test_it_never_takes_its_own_row_for_a_dead_host(queued, settings):
    now, _ = queued
    host("me:1:a", beat_at=now)

    assert dead_hosts_recover(own_name="me:1:a", now=now + timedelta(seconds=settings.HEARTBEAT_STALE_AFTER + 1)) == 0


def test_heartbeats_of_hosts_gone_for_a_day_are_pruned(db):
    now = timezone.now()
    host("stopped-long-ago:1:a", beat_at=now - timedelta(days=2), stopped=True)
    host("silent-long-ago:2:b", beat_at=now - timedelta(days=2))
    host("stopped-just-now:3:c", beat_at=now, stopped=True)

    assert heartbeats_prune(now=now) == 2

    assert list(WorkerHeartbeat.objects.values_list("name", flat=True)) == ["stopped-just-now:3:c"]
