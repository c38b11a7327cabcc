"""Dedupe policies end to end: posted through the ingest API, delivered through SendGrid."""

from __future__ import annotations

from datetime import timedelta

from campaigns.models import DedupePolicy, Send
from tests.conftest import identify, run_worker, track
from tests.world import T0, decisions, rule_make, send_states, track_at


def test_per_event_sends_a_receipt_for_each_order_of_the_day(api, sendgrid):
    rule_make("receipt", "order_completed")
    api.batch([identify("u1", "u1@example.com"), track("order_completed", "u1"), track("order_completed", "u1")])
    run_worker()
    assert [m.to for m in sendgrid.accepted] == [["u1@example.com"], ["u1@example.com"]]
    assert len(sendgrid.keys()) == 2


def test_per_user_day_skips_the_second_event_of_the_day_and_sends_again_the_next_day(api, sendgrid):
    rule = rule_make("browse", "product_viewed", dedupe_policy=DedupePolicy.PER_USER_DAY)
    api.batch([identify("u1", "u1@example.com"), track_at("product_viewed", "u1", T0)])
    run_worker()
    api.batch([track_at("product_viewed", "u1", T0 + timedelta(hours=5))])
    run_worker()
    api.batch([track_at("product_viewed", "u1", T0 + timedelta(days=1))])
    run_worker()
    assert [r for _, r in decisions()] == ["scheduled", "duplicate", "scheduled"]
    assert sorted(sendgrid.keys()) == [f"r:{rule.pk}:u:u1:d:2026-03-02", f"r:{rule.pk}:u:u1:d:2026-03-03"]
    assert sorted(sendgrid.keys().values()) == [1, 1]


def test_per_user_day_counts_days_in_the_contacts_time_zone(api, sendgrid):
    rule = rule_make("browse", "product_viewed", dedupe_policy=DedupePolicy.PER_USER_DAY)
    # 15:00 UTC on 2 March and 02:00 UTC on 3 March are both 2 March in New York.
    api.batch(
        [
            identify("u1", "u1@example.com", timezone="America/New_York"),
            track_at("product_viewed", "u1", T0 + timedelta(hours=5)),
            track_at("product_viewed", "u1", T0 + timedelta(hours=16)),
        ]
    )
    run_worker()
    assert [r for _, r in decisions()] == ["scheduled", "duplicate"]
    assert list(sendgrid.keys()) == [f"r:{rule.pk}:u:u1:d:2026-03-02"]


def test_once_per_user_sends_only_the_first_time_ever(api, sendgrid):
    rule_make("first order", "order_completed", dedupe_policy=DedupePolicy.ONCE_PER_USER)
    api.batch([identify("u1", "u1@example.com"), track_at("order_completed", "u1", T0)])
    run_worker()
    api.batch([track_at("order_completed", "u1", T0 + timedelta(days=40))])
    run_worker()
    assert [r for _, r in decisions()] == ["scheduled", "duplicate"]
    assert len(sendgrid.accepted) == 1


def test_per_property_sends_once_per_order_and_skips_events_without_it(api, sendgrid):
    rule = rule_make("receipt", "order_completed", dedupe_policy=DedupePolicy.PER_PROPERTY, dedupe_property="order_id")
    api.batch(
        [
            identify("u1", "u1@example.com"),
            track("order_completed", "u1", order_id="A-1"),
            track("order_completed", "u1", order_id="A-1"),
            track("order_completed", "u1"),
            track("order_completed", "u1", order_id="A-2"),
        ]
    )
    run_worker()
    api.batch([track("order_completed", "u1", order_id="A-1")])
    run_worker()
    assert [r for _, r in decisions()] == ["scheduled", "duplicate", "no_dedupe_value", "scheduled", "duplicate"]
    assert sorted(sendgrid.keys()) == [f"r:{rule.pk}:u:u1:p:order_id=A-1", f"r:{rule.pk}:u:u1:p:order_id=A-2"]


def test_the_same_batch_posted_twice_sends_one_email(api, sendgrid):
    rule_make("receipt", "order_completed")
    batch = [identify("u1", "u1@example.com", message_id="m-0"), track("order_completed", "u1", message_id="m-1")]
    assert api.batch(batch).status_code == 200
    assert api.batch(batch).status_code == 200
    run_worker()
    run_worker()
    assert [m.to for m in sendgrid.accepted] == [["u1@example.com"]]


def test_a_cancelled_send_frees_its_key_for_the_next_event(api, sendgrid):
    rule_make(
        "recovery",
        "cart_abandoned",
        delay=timedelta(minutes=60),
        exit_events=["order_completed"],
        dedupe_policy=DedupePolicy.ONCE_PER_USER,
    )
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1"), track("order_completed", "u1")])
    run_worker()
    api.batch([track("cart_abandoned", "u1")])
    run_worker()
    run_worker(at=Send.objects.latest("id").due_at)
    assert send_states() == [("recovery", "cancelled"), ("recovery", "sent")]
    assert list(sendgrid.keys().values()) == [1]
