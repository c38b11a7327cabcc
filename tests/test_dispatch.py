"""The dispatcher finds work in the rows: due sends, lost tasks, stale events, dead workers."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_q.models import OrmQ

from campaigns.models import Send
from campaigns.sending.delivery import send_record
from campaigns.sending.dispatcher import dispatch_pause, dispatcher_run, gather_seconds
from campaigns.sending.provider import provider_send
from campaigns.sending.queueing import due_sends_queue, next_due_at, stale_sending_settle
from harness.sendgrid_server import Fault
from tests.conftest import identify, run_worker, track
from tests.steps import dispatch_once, events_process_pending, send_claim
from tests.world import minutes, queued_tasks, queued_tasks_run, rule_make

DELIVER = "campaigns.tasks.sends_deliver"


@pytest.fixture
def signup(api, sendgrid):
    """A welcome due now and a nudge due in 30 minutes, matched at T; the ingest task already ran."""
    rule_make("welcome", "user_signup")
    rule_make("nudge", "user_signup", delay=minutes(30))
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
        OrmQ.objects.all().delete()
        events_process_pending()
    return now, Send.objects.get(rule__name="welcome"), Send.objects.get(rule__name="nudge")


def test_processing_queues_the_send_due_now_and_marks_it(signup):
    now, welcome, nudge = signup
    assert queued_tasks() == [(DELIVER, ([welcome.pk],))]
    assert (welcome.enqueued_at, nudge.enqueued_at) == (now, None)


def test_it_queues_only_due_sends_not_queued_recently(signup):
    now, _, nudge = signup
    OrmQ.objects.all().delete()
    assert due_sends_queue(now=now + timedelta(seconds=10)) == 0
    assert queued_tasks() == []
    queued_tasks_run()
    run_worker(at=now + timedelta(seconds=20))
    assert due_sends_queue(now=now + minutes(31)) == 1
    assert queued_tasks() == [(DELIVER, ([nudge.pk],))]
    nudge.refresh_from_db()
    assert nudge.enqueued_at == now + minutes(31)
    assert due_sends_queue(now=now + minutes(32)) == 0


def test_a_lost_delivery_task_is_queued_again_after_the_retry_lease(signup, sendgrid, settings):
    now, welcome, _ = signup
    OrmQ.objects.all().delete()  # the broker lost it (a Redis cluster died)
    lease = settings.Q_CLUSTER["retry"]
    assert due_sends_queue(now=now + timedelta(seconds=lease - 1)) == 0
    with time_machine.travel(now + timedelta(seconds=lease + 1), tick=False):
        assert dispatch_once(now=timezone.now(), slow_checks=False) == 1
        assert queued_tasks() == [(DELIVER, ([welcome.pk],))]
        assert queued_tasks_run() == 1
    assert [m.key for m in sendgrid.accepted] == [welcome.dedupe_key]


def test_a_task_queued_twice_still_sends_once(signup, sendgrid, settings):
    now, welcome, _ = signup
    with time_machine.travel(now + timedelta(seconds=settings.Q_CLUSTER["retry"] + 1), tick=False):
        due_sends_queue(now=timezone.now())
        assert queued_tasks() == [(DELIVER, ([welcome.pk],)), (DELIVER, ([welcome.pk],))]
        assert queued_tasks_run() == 2
    assert list(sendgrid.keys().values()) == [1]


def test_a_sending_row_outliving_its_worker_becomes_unknown_and_a_late_answer_still_counts(signup, sendgrid, settings):
    now, welcome, _ = signup
    claim = send_claim(welcome.pk, now=now)
    assert claim is not None
    stale_after = timedelta(seconds=settings.SENDING_STALE_AFTER)
    assert stale_sending_settle(now=now + stale_after - timedelta(seconds=1)) == 0
    assert stale_sending_settle(now=now + stale_after + timedelta(seconds=1)) == 1
    welcome.refresh_from_db()
    assert welcome.state == "unknown"
    # Never back to scheduled: the dispatcher and the worker leave it alone.
    assert due_sends_queue(now=now + timedelta(days=1)) == 1  # only the nudge
    run_worker(at=now + timedelta(days=1))
    assert [m.key for m in sendgrid.accepted] == [Send.objects.get(rule__name="nudge").dedupe_key]
    # The worker was only slow: its answer arrives and proves the send.
    result = provider_send(claim.message)
    send_record(claim, result, now=now + timedelta(days=1))
    welcome.refresh_from_db()
    assert (welcome.state, welcome.provider_message_id) == ("sent", sendgrid.accepted[-1].message_id)


def test_the_dispatcher_loop_runs_until_told_to_stop(transactional_db, signup, sendgrid, settings):
    # transactional_db: the loop closes stale connections, which would end a test transaction.
    now, welcome, _ = signup
    OrmQ.objects.all().delete()
    rounds = iter([False, True])
    with time_machine.travel(now + timedelta(seconds=settings.Q_CLUSTER["retry"] + 1), tick=False):
        dispatcher_run(should_stop=lambda: next(rounds), interval=0)
    assert queued_tasks() == [(DELIVER, ([welcome.pk],))]


def test_the_dispatcher_loop_matches_stored_events_without_any_task(transactional_db, api, sendgrid):
    rule_make("welcome", "user_signup")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    assert queued_tasks() == []  # the ingest queues nothing: the loop finds the events itself
    rounds = iter([False, True])
    dispatcher_run(should_stop=lambda: next(rounds), interval=0)
    send = Send.objects.get()
    assert queued_tasks() == [(DELIVER, ([send.pk],))]


def test_a_late_refusal_of_an_unknown_send_marks_it_failed_not_scheduled(signup, sendgrid, settings):
    now, welcome, _ = signup
    claim = send_claim(welcome.pk, now=now)
    assert claim is not None
    stale_sending_settle(now=now + timedelta(seconds=settings.SENDING_STALE_AFTER + 1))
    sendgrid.fail_next(Fault(kind="status", status=429))
    send_record(claim, provider_send(claim.message), now=now + timedelta(minutes=5))
    welcome.refresh_from_db()
    assert welcome.state == "failed"
    run_worker(at=now + timedelta(days=1))
    assert sendgrid.keys()[welcome.dedupe_key] == 0


def test_an_event_after_a_quiet_spell_is_matched_without_waiting_for_company():
    assert gather_seconds(since_last_batch=0.2, limit=0.05) == 0.0


def test_in_a_stream_batches_start_at_most_once_per_limit_the_last_pass_counting_towards_it():
    assert gather_seconds(since_last_batch=0.012, limit=0.05) == pytest.approx(0.038)
    assert gather_seconds(since_last_batch=0.0, limit=0.05) == 0.05


def test_with_no_send_scheduled_the_dispatcher_looks_again_after_its_interval():
    assert dispatch_pause(until_due=None, queued=0, interval=0.2, limit=0.05) == 0.2


def test_a_quiet_dispatcher_looks_again_when_the_next_send_falls_due():
    assert dispatch_pause(until_due=0.012, queued=0, interval=0.2, limit=0.05) == 0.012
    assert dispatch_pause(until_due=30.0, queued=0, interval=0.2, limit=0.05) == 0.2


def test_while_sends_keep_falling_due_they_are_queued_in_batches():
    assert dispatch_pause(until_due=0.003, queued=7, interval=0.2, limit=0.05) == 0.05


def test_next_due_at_names_the_next_scheduled_send_after_the_moment(signup):
    now, _, nudge = signup
    assert next_due_at(after=now) == nudge.due_at
    assert next_due_at(after=nudge.due_at) is None
