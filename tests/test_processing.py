"""Processing stored events into decisions and sends: once, in order, and queued when due."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Decision, Rule, Send
from events.models import Event
from tests.conftest import identify, run_worker, track
from tests.steps import events_process_pending
from tests.world import decisions, minutes, queued_tasks, rule_make


def test_a_sequence_on_one_event_schedules_three_sends(api, sendgrid):
    rule_make("day 0", "user_signup")
    rule_make("day 2", "user_signup", delay=timedelta(days=2))
    rule_make("day 7", "user_signup", delay=timedelta(days=7))
    occurred_at = timezone.now()
    # The clock stands still so that "no delay" is exactly the moment of the event.
    with time_machine.travel(occurred_at, tick=False):
        api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
        events_process_pending()
    sends = Send.objects.order_by("due_at")
    assert [(s.rule.name, s.due_at - occurred_at) for s in sends] == [
        ("day 0", timedelta(0)),
        ("day 2", timedelta(days=2)),
        ("day 7", timedelta(days=7)),
    ]
    run_worker(at=occurred_at + timedelta(days=7, minutes=1))
    assert len(sendgrid.keys()) == 3


def test_processing_twice_stores_each_decision_once(api):
    rule_make("welcome", "user_signup")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    assert events_process_pending() == 2
    assert events_process_pending() == 0
    assert Decision.objects.count() == 1
    assert Send.objects.count() == 1
    assert not Event.objects.filter(processed_at__isnull=True).exists()


def test_it_queues_delivery_only_for_sends_due_now(api):
    rule_make("welcome", "user_signup")
    rule_make("nudge", "user_signup", delay=minutes(30))
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    before = queued_tasks()
    events_process_pending()
    welcome = Send.objects.get(rule__name="welcome")
    assert queued_tasks()[len(before) :] == [("campaigns.tasks.sends_deliver", ([welcome.pk],))]
    assert welcome.enqueued_at is not None
    assert Send.objects.get(rule__name="nudge").enqueued_at is None


def test_identify_and_other_calls_decide_nothing(api):
    rule_make("welcome", "u1")  # a rule named like the user id must not match an identify call
    api.batch([identify("u1", "u1@example.com"), {"type": "page", "userId": "u1", "name": "u1"}])
    events_process_pending()
    assert Decision.objects.count() == 0


def test_a_rule_edited_between_events_decides_the_next_event(api, sendgrid):
    rule = rule_make("welcome", "user_signup")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    events_process_pending()
    Rule.objects.filter(pk=rule.pk).update(active=False)
    api.batch([track("user_signup", "u1")])
    events_process_pending()
    assert decisions() == [("user_signup", "scheduled"), ("user_signup", "inactive")]


def test_events_are_processed_in_batches_until_none_is_left(api):
    rule_make("receipt", "order_completed")
    api.batch([identify("u1", "u1@example.com")] + [track("order_completed", "u1") for _ in range(7)])
    assert events_process_pending(batch_size=3) == 8
    assert Send.objects.filter(state="scheduled").count() == 7
    assert Send.objects.filter(due_at__lte=timezone.now()).count() == 7


def test_matching_reads_the_events_once_a_batch_and_never_their_context(api):
    rule_make("receipt", "order_completed", exit_events=["order_refunded"], goal_event="order_completed")

    def matched(count: int) -> list[str]:
        with_context = [
            {**track("order_completed", f"u{n}", total=n), "context": {"userAgent": "x" * 2000}} for n in range(count)
        ]
        api.batch([identify(f"u{n}", f"u{n}@example.com") for n in range(count)] + with_context)
        api.batch([track("order_refunded", "u0")])
        with CaptureQueriesContext(connection) as queries:
            events_process_pending()
        return [q["sql"] for q in queries if q["sql"].startswith("SELECT") and '"events_event"' in q["sql"]]

    one, six = matched(1), matched(6)
    assert Send.objects.count() == 7
    # The same reads for six events as for one (no event's fields fetched one at a time) ...
    assert len(six) == len(one)
    # ... and none of them asks for what matching does not use, an SDK's context of any size.
    assert not [sql for sql in one + six if '"events_event"."context"' in sql or '"events_event"."traits"' in sql]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="synchronous_commit is PostgreSQL's")
def test_matching_commits_without_waiting_but_leaves_the_connection_synchronous(transactional_db, api):
    api.batch([track("user_signup", "u1")])
    with CaptureQueriesContext(connection) as queries:
        events_process_pending()
    assert "SET LOCAL synchronous_commit TO OFF" in [q["sql"] for q in queries]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
