"""Frequency caps: checked when a send is claimed, with the contact locked, so workers cannot overshoot."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from campaigns.models import Send
from campaigns.sending.caps import CapLimit, cap_free_at
from campaigns.sending.delivery import sends_deliver
from tests import baker_recipes
from tests.conftest import identify, later, run_worker, track
from tests.steps import events_process_pending
from tests.test_concurrency import in_parallel
from tests.world import rule_make, template_make

DAY = timedelta(hours=24)
NOW = datetime.fromisoformat("2026-03-02T10:00:00+00:00")


def test_a_slot_frees_when_the_oldest_counted_send_leaves_the_period():
    limit = CapLimit(2, DAY, "cap")
    times = [NOW - timedelta(hours=30), NOW - timedelta(hours=5), NOW - timedelta(hours=1)]
    assert cap_free_at(times[:2], limit, now=NOW) is None
    assert cap_free_at(times, limit, now=NOW) == NOW + timedelta(hours=19)
    # Three counted sends under a cap of two (the cap was lowered): two must leave.
    assert cap_free_at([NOW - timedelta(hours=h) for h in (3, 2, 1)], limit, now=NOW) == NOW + timedelta(hours=22)


def marketing_rules(count: int, **fields: object) -> None:
    promo = template_make("Promo", category="marketing")
    for number in range(count):
        rule_make(f"promo {number}", "user_signup", template=promo, **fields)


@pytest.mark.parametrize("action", ["skip", "delay"])
def test_two_workers_deliver_exactly_the_cap_of_four_marketing_emails_fired_at_once(
    transactional_db, api, sendgrid, action
):
    baker_recipes.campaign_settings.make(marketing_cap_count=2, marketing_cap_period=DAY)
    marketing_rules(4, capped_action=action)
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    events_process_pending()
    ids = list(Send.objects.order_by("id").values_list("pk", flat=True))
    assert len(ids) == 4
    # Both workers try every send, in opposite orders, at the same moment.
    assert in_parallel(lambda n: sends_deliver(ids[:: 1 if n % 2 else -1]), workers=2) == []

    assert len(sendgrid.accepted) == 2
    sent = Send.objects.filter(state="sent")
    assert sent.count() == 2
    others = Send.objects.exclude(state="sent")
    if action == "skip":
        assert set(others.values_list("state", flat=True)) == {"cancelled"}
        assert all(s.reason == "frequency cap: marketing cap of 2 per 1 day reached" for s in others)
    else:
        oldest = min(s.sending_started_at for s in sent if s.sending_started_at)
        assert [(s.state, s.due_at) for s in others] == [("scheduled", oldest + DAY)] * 2
        assert all(
            s.reason.startswith("frequency cap: marketing cap of 2 per 1 day reached; delayed to ") for s in others
        )


def test_a_delayed_send_goes_out_when_the_slot_frees(api, sendgrid):
    baker_recipes.campaign_settings.make(marketing_cap_count=1, marketing_cap_period=DAY)
    marketing_rules(2, capped_action="delay")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    run_worker()
    assert len(sendgrid.accepted) == 1
    run_worker(at=later(hours=23))
    assert len(sendgrid.accepted) == 1
    run_worker(at=later(hours=24, minutes=1))
    assert len(sendgrid.accepted) == 2
    assert set(Send.objects.values_list("state", flat=True)) == {"sent"}


def test_the_marketing_cap_leaves_transactional_email_alone(api, sendgrid):
    baker_recipes.campaign_settings.make(marketing_cap_count=1, marketing_cap_period=DAY)
    marketing_rules(1)
    receipt = template_make("Receipt", category="transactional")
    rule_make("receipt", "user_signup", template=receipt)
    rule_make("receipt copy", "user_signup", template=receipt)
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    run_worker()
    assert len(sendgrid.accepted) == 3


def test_a_rules_own_cap_counts_only_its_sends_in_any_category(api, sendgrid):
    receipt = template_make("Receipt", category="transactional")
    rule_make("receipt", "order_completed", template=receipt, cap_count=2, cap_period=timedelta(hours=1))
    rule_make("other", "order_completed")
    api.batch([identify("u1", "u1@example.com")] + [track("order_completed", "u1") for _ in range(3)])
    run_worker()
    assert Send.objects.filter(rule__name="receipt", state="sent").count() == 2
    capped = Send.objects.get(rule__name="receipt", state="cancelled")
    assert capped.reason == "frequency cap: cap of rule 'receipt' of 2 per 1 hour reached"
    assert Send.objects.filter(rule__name="other", state="sent").count() == 3


def test_no_cap_is_set_by_default(api, sendgrid):
    marketing_rules(5)
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    run_worker()
    assert len(sendgrid.accepted) == 5
