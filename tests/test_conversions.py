"""Conversions: a goal event soon after an email counts for the latest such email, once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import time_machine
from django.utils import timezone

from campaigns.matching.conversions import revenue_of
from campaigns.models import Send
from events.models import Event
from tests.conftest import identify, run_worker, track
from tests.steps import events_process_pending
from tests.world import post_at, rule_make


def converted() -> list[tuple[str, str | None, Decimal | None]]:
    rows = Send.objects.order_by("id").select_related("rule", "conversion_event")
    return [(s.rule.name, s.conversion_event.name if s.conversion_event else None, s.revenue) for s in rows]


def test_an_order_within_the_goal_window_converts_the_email_with_its_revenue(api, sendgrid):
    rule_make("recovery", "cart_abandoned", goal_event="order_completed", goal_window=timedelta(days=3))
    start = timezone.now()
    post_at(api, start, [identify("u1", "u1@example.com"), track("cart_abandoned", "u1")])
    run_worker(at=start)
    post_at(api, start + timedelta(days=2), [track("order_completed", "u1", revenue=42.5)])
    run_worker(at=start + timedelta(days=2))
    send = Send.objects.get()
    assert converted() == [("recovery", "order_completed", Decimal("42.50"))]
    assert send.converted_at == Event.objects.get(name="order_completed").occurred_at


def test_the_latest_email_gets_the_credit_across_rules(api, sendgrid):
    rule_make("browse", "product_viewed", goal_event="order_completed")
    rule_make("recovery", "cart_abandoned", goal_event="order_completed")
    rule_make("no goal", "cart_abandoned")
    start = timezone.now()
    post_at(api, start, [identify("u1", "u1@example.com"), track("product_viewed", "u1")])
    run_worker(at=start)
    post_at(api, start + timedelta(hours=1), [track("cart_abandoned", "u1")])
    run_worker(at=start + timedelta(hours=1))
    post_at(api, start + timedelta(hours=2), [track("order_completed", "u1", total="19.99")])
    run_worker(at=start + timedelta(hours=2))
    assert converted() == [
        ("browse", None, None),
        ("recovery", "order_completed", Decimal("19.99")),
        ("no goal", None, None),
    ]


def test_a_goal_event_outside_the_window_or_from_someone_else_converts_nothing(api, sendgrid):
    rule_make("recovery", "cart_abandoned", goal_event="order_completed", goal_window=timedelta(hours=1))
    start = timezone.now()
    post_at(api, start, [identify("u1", "u1@example.com"), identify("u2", "u2@example.com")])
    post_at(api, start, [track("cart_abandoned", "u1")])
    run_worker(at=start)
    post_at(api, start + timedelta(hours=2), [track("order_completed", "u1"), track("order_completed", "u2")])
    run_worker(at=start + timedelta(hours=2))
    assert converted() == [("recovery", None, None)]


def test_processing_the_same_goal_event_again_does_not_count_twice(api, sendgrid):
    rule_make("recovery", "cart_abandoned", goal_event="order_completed")
    start = timezone.now()
    post_at(api, start, [identify("u1", "u1@example.com"), track("cart_abandoned", "u1")])
    run_worker(at=start)
    post_at(api, start + timedelta(minutes=10), [track("cart_abandoned", "u1")])
    run_worker(at=start + timedelta(minutes=10))
    post_at(api, start + timedelta(hours=1), [track("order_completed", "u1", revenue=10)])
    run_worker(at=start + timedelta(hours=1))
    assert converted() == [("recovery", None, None), ("recovery", "order_completed", Decimal("10.00"))]
    # The batch runs again (say its transaction's commit was in doubt): the older email stays unconverted.
    Event.objects.filter(name="order_completed").update(processed_at=None)
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        events_process_pending()
    assert converted() == [("recovery", None, None), ("recovery", "order_completed", Decimal("10.00"))]


def test_a_second_goal_event_converts_an_earlier_email_still_unconverted(api, sendgrid):
    rule_make("recovery", "cart_abandoned", goal_event="order_completed")
    start = timezone.now()
    post_at(api, start, [identify("u1", "u1@example.com"), track("cart_abandoned", "u1")])
    run_worker(at=start)
    post_at(api, start + timedelta(minutes=10), [track("cart_abandoned", "u1")])
    run_worker(at=start + timedelta(minutes=10))
    post_at(api, start + timedelta(hours=1), [track("order_completed", "u1"), track("order_completed", "u1")])
    run_worker(at=start + timedelta(hours=1))
    assert [name for _, name, _ in converted()] == ["order_completed", "order_completed"]


def test_revenue_is_read_from_revenue_or_total_when_it_is_a_number():
    assert revenue_of({"revenue": 12, "total": 99}) == Decimal("12.00")
    assert revenue_of({"revenue": "n/a", "total": "7.456"}) == Decimal("7.46")
    assert revenue_of({"revenue": True}) is None
    assert revenue_of({"total": "NaN"}) is None
    assert revenue_of({}) is None
