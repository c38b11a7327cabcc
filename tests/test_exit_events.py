"""Exit events cancel a pending send: when processed, in the same batch, and again at send time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from campaigns.models import Send
from tests.conftest import identify, later, run_worker, track
from tests.world import minutes, rule_make, send_states, track_at


@pytest.fixture
def recovery(db):
    return rule_make("recovery", "cart_abandoned", delay=minutes(60), exit_events=["order_completed"])


def test_an_order_after_the_abandoned_cart_cancels_the_recovery(api, sendgrid, recovery):
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1")])
    run_worker()
    api.batch([track("order_completed", "u1")])
    run_worker(at=later(minutes=10))
    send = Send.objects.get()
    assert send.state == Send.State.CANCELLED
    assert send.reason.startswith("exit event order_completed at ")
    run_worker(at=later(minutes=61))
    assert sendgrid.accepted == []


def test_an_order_in_the_same_batch_cancels_the_recovery(api, sendgrid, recovery):
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1"), track("order_completed", "u1")])
    run_worker(at=later(minutes=61))
    assert send_states() == [("recovery", "cancelled")]
    assert sendgrid.accepted == []


def test_an_order_processed_before_the_cart_still_cancels_it_at_send_time(api, sendgrid, recovery):
    # The order happened after the cart, but its event was processed first (a late batch from
    # another device), so only the re-check when the recovery is due can see it.
    api.batch([identify("u1", "u1@example.com"), track_at("order_completed", "u1", later(minutes=-5))])
    run_worker()
    api.batch([track_at("cart_abandoned", "u1", later(minutes=-10))])
    run_worker()
    assert send_states() == [("recovery", "scheduled")]
    run_worker(at=later(minutes=61))
    send = Send.objects.get()
    assert (send.state, send.reason[:31]) == ("cancelled", "exit event order_completed at 2")
    assert sendgrid.accepted == []


def test_an_order_before_the_cart_does_not_cancel_the_recovery(api, sendgrid, recovery):
    api.batch(
        [
            identify("u1", "u1@example.com"),
            track_at("order_completed", "u1", later(hours=-2)),
            track_at("cart_abandoned", "u1", later(minutes=-1)),
        ]
    )
    run_worker(at=later(minutes=61))
    assert [m.to for m in sendgrid.accepted] == [["u1@example.com"]]


def test_an_exit_event_of_another_user_changes_nothing(api, sendgrid, recovery):
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1"), track("order_completed", "u2")])
    run_worker(at=later(minutes=61))
    assert [m.to for m in sendgrid.accepted] == [["u1@example.com"]]


def test_an_exit_event_does_not_touch_a_send_already_sent(api, sendgrid, recovery):
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1")])
    run_worker(at=later(minutes=61))
    api.batch([track("order_completed", "u1")])
    run_worker(at=later(minutes=62))
    assert send_states() == [("recovery", "sent")]
    assert len(sendgrid.accepted) == 1


def test_exit_events_cancel_every_rule_of_a_sequence(api, sendgrid, recovery):
    rule_make("recovery 2", "cart_abandoned", delay=timedelta(days=2), exit_events=["order_completed"])
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1")])
    run_worker()
    api.batch([track("order_completed", "u1")])
    run_worker(at=later(days=3))
    assert send_states() == [("recovery", "cancelled"), ("recovery 2", "cancelled")]
    assert sendgrid.accepted == []


@pytest.mark.parametrize("order_first", [True, False], ids=["order-stored-first", "cart-stored-first"])
def test_events_at_the_same_instant_are_ordered_by_arrival(api, sendgrid, recovery, order_first):
    # A device clock ahead of ours makes timestamps clamp to the receive time, so a cart and an
    # order can share an instant. Then arrival decides: only an order stored after the cart exits.
    at = later(minutes=-61)
    cart, order = track_at("cart_abandoned", "u1", at), track_at("order_completed", "u1", at)
    api.batch([identify("u1", "u1@example.com"), *([order, cart] if order_first else [cart, order])])
    run_worker()
    assert send_states() == [("recovery", "sent" if order_first else "cancelled")]
    assert len(sendgrid.accepted) == (1 if order_first else 0)


def test_a_same_instant_order_that_arrived_later_is_seen_by_the_send_time_recheck(api, sendgrid, recovery):
    at = later(minutes=-30)
    api.batch([identify("u1", "u1@example.com"), track_at("cart_abandoned", "u1", at)])
    run_worker()
    # Stored after the cart but not yet processed when the recovery falls due.
    api.batch([track_at("order_completed", "u1", at)])
    from campaigns.sending.delivery import sends_deliver

    with time_machine.travel(later(minutes=31)):
        sends_deliver([Send.objects.get().pk])
    send = Send.objects.get()
    assert (send.state, send.reason[:26]) == ("cancelled", "exit event order_completed")
    assert sendgrid.accepted == []
