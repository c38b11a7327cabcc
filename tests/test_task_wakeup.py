"""A queued delivery wakes the task queue's consumer when its transaction commits, not at its next poll."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_q.models import OrmQ

from triggermail import broker as broker_module
from triggermail.broker import NotifiedORM
from triggermail.queue import enqueue

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="NOTIFY is PostgreSQL's; elsewhere the broker polls every Q_POLL"
)


@pytest.fixture
def broker(transactional_db):
    # transactional_db: a notification is delivered only when the enqueuing transaction commits.
    consumer = NotifiedORM(list_key="tests-wakeup")
    assert consumer._listener.wait(0) is False  # connects and LISTENs; nothing has arrived yet
    if "direct" in settings.DATABASES:  # behind PgBouncer: LISTEN on the server itself, never the pooler
        listening = consumer._listener._connection
        assert listening is not None
        assert listening.info.port == int(settings.DATABASES["direct"]["PORT"])
        assert listening.info.dbname == connection.settings_dict["NAME"]
    yield consumer
    consumer._listener.close()


def _queue_one() -> None:
    enqueue("campaigns.tasks.sends_deliver", [1])


def test_a_committed_task_wakes_the_consumer(broker):
    with transaction.atomic():
        _queue_one()
    assert broker._listener.wait(5) is True


def test_a_rolled_back_task_wakes_nobody(broker):
    with pytest.raises(RuntimeError), transaction.atomic():
        _queue_one()
        raise RuntimeError("rolled back")
    assert OrmQ.objects.count() == 0
    assert broker._listener.wait(0.3) is False


def test_an_idle_consumer_takes_a_task_queued_while_it_waits_before_its_fallback_poll(broker, monkeypatch):
    # Were the consumer only polling, it would look again in an hour: only the wake-up can end its wait.
    monkeypatch.setattr(broker_module, "NOTIFIED_POLL", 3600.0)
    looked, taken = threading.Event(), list[object]()
    claim = broker._claim

    def claim_and_tell() -> list[tuple[object, object]]:
        found = claim()
        looked.set()
        return found

    monkeypatch.setattr(broker, "_claim", claim_and_tell)

    def consume() -> None:
        try:
            while not (tasks := broker.dequeue()):
                pass
            taken.extend(payload for _, payload in tasks)
        finally:
            connection.close()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    # Queued after the consumer found the queue empty, so it is waiting (or about to) when this commits.
    assert looked.wait(10)
    OrmQ.objects.create(key=broker.list_key, payload="task", lock=timezone.now())
    consumer.join(10)
    assert taken == ["task"], "the consumer was not woken by the committed task"
