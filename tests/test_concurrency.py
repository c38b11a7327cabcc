"""Tasks run twice and at the same time: workers in threads, each with its own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection

from campaigns.models import Decision, Send
from campaigns.sending.delivery import sends_deliver
from tests.conftest import identify, track
from tests.steps import events_process_pending
from tests.world import rule_make

WORKERS = 4


def in_parallel(work: Callable[[int], object], workers: int = WORKERS) -> list[BaseException]:
    """Run `work(worker_number)` in threads that start together; return what they raised."""
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            start.wait()
            work(number)
        except BaseException as exc:
            errors.append(exc)
        finally:
            # Each thread has its own connection; leaving it open would block the test database's teardown.
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.fixture
def orders(transactional_db, api):
    """Twenty receipts and a once-per-user welcome, matched and due now."""
    rule_make("receipt", "order_completed")
    rule_make("welcome", "order_completed", dedupe_policy="once_per_user")
    api.batch([identify("u1", "u1@example.com")] + [track("order_completed", "u1") for _ in range(20)])


def test_concurrent_workers_deliver_each_key_exactly_once(orders, sendgrid):
    events_process_pending()
    ids = list(Send.objects.order_by("id").values_list("pk", flat=True))
    assert len(ids) == 21
    # Every worker tries every send, in opposite orders to maximise collisions.
    assert in_parallel(lambda n: sends_deliver(ids[:: 1 if n % 2 else -1])) == []
    assert len(sendgrid.accepted) == 21
    assert set(sendgrid.keys().values()) == {1}
    assert set(Send.objects.values_list("state", flat=True)) == {"sent"}


def test_concurrent_processing_stores_each_decision_once(orders, sendgrid):
    assert in_parallel(lambda n: events_process_pending(batch_size=3 + n)) == []
    assert Decision.objects.count() == 40
    assert Decision.objects.filter(rule__name="welcome", reason="scheduled").count() == 1
    assert Send.objects.filter(rule__name="receipt").count() == 20
    assert Send.objects.filter(rule__name="welcome").count() == 1


def test_concurrent_workers_respect_a_cooldown_added_while_sends_waited(transactional_db, api, sendgrid):
    rule = rule_make("nudge", "cart_abandoned")
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1"), track("cart_abandoned", "u1")])
    events_process_pending()
    ids = list(Send.objects.order_by("id").values_list("pk", flat=True))
    assert len(ids) == 2
    # A marketer adds a cooldown while both sends wait: only one may go, even when two workers
    # claim them at the same moment.
    rule.cooldown = timedelta(hours=1)
    rule.save()
    assert in_parallel(lambda n: sends_deliver([ids[n]]), workers=2) == []
    assert len(sendgrid.accepted) == 1
    assert sorted(Send.objects.values_list("state", flat=True)) == ["cancelled", "sent"]
