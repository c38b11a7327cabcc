"""Poison events: whatever one event makes matching raise is confined to that event.

Each test posts a bad event and a good one from someone else through the ingest API, runs the
worker's steps (matching, then delivery through Anymail's SendGrid backend to the local server),
and asserts what people see: the bad event marked with its reason, the good one's email sent.
"""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal

import pytest
from django.db import OperationalError
from django.utils import timezone

from campaigns.matching.processing import events_process_batch
from campaigns.models import Condition, Decision, Rule, Send
from events.models import Contact, Event
from tests import baker_recipes
from tests.conftest import identify, later, run_worker, track
from tests.world import rule_make

BIG = 10**400


@pytest.fixture
def rules(db: None) -> dict[str, Rule]:
    """A welcome email, and a receipt for orders of 50 or more (the issue's `value gte 50` shape)."""
    receipt = rule_make("receipt", "order_completed")
    baker_recipes.condition.make(rule=receipt, key="total", operator="gte", value=50)
    return {"welcome": rule_make("welcome", "user_signup"), "receipt": receipt}


def recipients(sendgrid) -> list[str]:
    return sorted(address for message in sendgrid.accepted for address in message.to)


def event_state(name: str, user_id: str) -> tuple[bool, str]:
    event = Event.objects.get(name=name, user_id=user_id)
    return event.processed_at is not None, event.processing_error


def test_the_issues_400_digit_total_is_larger_than_50_and_the_next_signup_gets_its_welcome(api, sendgrid, rules):
    api.batch([identify("big", "big@example.com"), track("order_completed", "big", total=BIG)])
    run_worker()
    api.batch([identify("new", "new@example.com"), track("user_signup", "new")])
    run_worker()

    assert recipients(sendgrid) == ["big@example.com", "new@example.com"]
    assert not Event.objects.filter(processed_at__isnull=True).exists()


@pytest.mark.parametrize("value", [BIG, -BIG, str(BIG)], ids=["big", "minus-big", "big-string"])
@pytest.mark.parametrize("operator", ["eq", "ne", "gt", "lte", "contains"])
def test_huge_integers_compare_without_raising(api, sendgrid, rules, value, operator):
    Condition.objects.filter(rule=rules["receipt"]).update(operator=operator)
    api.batch([identify("u1", "u1@example.com"), track("order_completed", "u1", total=value)])
    run_worker()
    assert event_state("order_completed", "u1") == (True, "")
    assert Decision.objects.get(rule=rules["receipt"]).reason in ("scheduled", "condition_false")


@pytest.mark.parametrize(
    ("total", "reason"),
    [
        # Read exactly (conditions._number): a number written as text, larger than 50.
        ("1e309", "scheduled"),
        ([60, 70], "condition_false"),
        ({"amount": 60}, "condition_false"),
        ({"a": {"b": [[[[[[60]]]]]]}}, "condition_false"),
        ("60", "scheduled"),
    ],
)
def test_odd_values_where_a_number_is_compared_get_a_decision_with_the_reason(api, sendgrid, rules, total, reason):
    api.batch(
        [
            identify("odd", "odd@example.com"),
            track("order_completed", "odd", total=total),
            identify("new", "new@example.com"),
            track("user_signup", "new"),
        ]
    )
    run_worker()
    assert event_state("order_completed", "odd") == (True, "")
    assert Decision.objects.get(rule=rules["receipt"]).reason == reason
    assert "new@example.com" in recipients(sendgrid)


def test_a_rule_that_raises_on_one_event_marks_that_event_failed_and_the_batch_goes_on(api, sendgrid, rules):
    # An operator no form offers (a row written by an older version or by hand) raises when it meets
    # a numeric total: the other events of the same batch must still be matched.
    Condition.objects.filter(rule=rules["receipt"]).update(operator="between")
    api.batch(
        [
            identify("bad", "bad@example.com"),
            track("order_completed", "bad", total=80),
            identify("new", "new@example.com"),
            track("user_signup", "new"),
        ]
    )
    run_worker()

    processed, error = event_state("order_completed", "bad")
    assert processed and error == "ValueError: unknown condition operator 'between'"
    decision = Decision.objects.get(event__user_id="bad", rule=rules["receipt"])
    assert (decision.outcome, decision.reason, decision.detail) == ("skipped", "error", error)
    assert event_state("user_signup", "new") == (True, "")
    assert recipients(sendgrid) == ["new@example.com"]


def test_a_revenue_too_large_for_its_column_converts_without_revenue(api, sendgrid, rules):
    Rule.objects.filter(pk=rules["welcome"].pk).update(goal_event="order_completed")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    run_worker()
    # Rounded to the cent it has 13 digits before the point; Send.revenue holds 12.
    api.batch([track("order_completed", "u1", revenue="999999999999.999"), identify("u2", "u2@example.com")])
    api.batch([track("user_signup", "u2")])
    run_worker(at=later(minutes=1))

    assert event_state("order_completed", "u1") == (True, "")
    welcome = Send.objects.get(contact__user_id="u1")
    assert welcome.conversion_event is not None and welcome.revenue is None
    assert recipients(sendgrid) == ["u1@example.com", "u2@example.com"]


def test_a_revenue_that_fits_is_still_recorded_to_the_cent(api, sendgrid, rules):
    Rule.objects.filter(pk=rules["welcome"].pk).update(goal_event="order_completed")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    run_worker()
    api.batch([track("order_completed", "u1", revenue="999999999999.994")])
    run_worker(at=later(minutes=1))
    assert Send.objects.get(contact__user_id="u1").revenue == Decimal("999999999999.99")


def test_an_unknown_time_zone_with_a_send_window_falls_back_and_sends(api, sendgrid, rules):
    # Ingest refuses unknown zones; a contact stored before that (or edited by hand) may hold one.
    Rule.objects.filter(pk=rules["welcome"].pk).update(window_start=time(0), window_end=time(0))
    api.batch([identify("tz", "tz@example.com")])
    Contact.objects.filter(user_id="tz").update(timezone="Mars/Olympus_Mons")
    api.batch([track("user_signup", "tz"), identify("new", "new@example.com"), track("user_signup", "new")])
    run_worker()
    assert recipients(sendgrid) == ["new@example.com", "tz@example.com"]


def test_a_huge_dedupe_value_gets_a_hashed_key_and_the_batch_goes_on(api, sendgrid, rules):
    rule_make("viewed", "product_viewed", dedupe_policy="per_property", dedupe_property="sku")
    api.batch(
        [
            identify("u1", "u1@example.com"),
            track("product_viewed", "u1", sku="x" * 20_000),
            identify("new", "new@example.com"),
            track("user_signup", "new"),
        ]
    )
    run_worker()
    send = Send.objects.get(rule__name="viewed")
    assert send.state == "sent" and len(send.dedupe_key) <= 200
    assert recipients(sendgrid) == ["new@example.com", "u1@example.com"]


def test_a_nul_in_a_dedupe_property_is_refused_at_ingest_with_the_reason(api, rules):
    answer = api.batch([track("product_viewed", "u1", sku="x\x00y")])
    assert answer.status_code == 400 and "NUL" in answer.content.decode()
    assert not Event.objects.exists()


def test_an_outage_while_matching_leaves_the_events_waiting_not_failed(api, rules, monkeypatch):
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])

    def outage() -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("campaigns.matching.processing.rules_in_force", outage)
    with pytest.raises(OperationalError):
        events_process_batch()
    assert list(Event.objects.values_list("processed_at", "processing_error")) == [(None, "")] * 2
    assert not Decision.objects.exists()


def test_failed_events_are_out_of_the_way_of_later_batches(api, sendgrid, rules):
    Condition.objects.filter(rule=rules["receipt"]).update(operator="between")
    api.batch([identify("bad", "bad@example.com"), track("order_completed", "bad", total=80)])
    run_worker()
    api.batch([identify("new", "new@example.com"), track("user_signup", "new")])
    started = timezone.now()
    run_worker()
    failed = Event.objects.get(name="order_completed")
    assert failed.processed_at is not None and failed.processed_at < started + timedelta(seconds=1)
    assert recipients(sendgrid) == ["new@example.com"]


def test_one_poison_event_among_many_fails_alone_and_every_other_event_is_matched(api, sendgrid, rules):
    Condition.objects.filter(rule=rules["receipt"]).update(operator="between")
    signups = [m for n in range(30) for m in (identify(f"u{n}", f"u{n}@example.com"), track("user_signup", f"u{n}"))]
    api.batch([*signups[:31], track("order_completed", "u3", total=80), *signups[31:]])
    run_worker()

    failed = Event.objects.exclude(processing_error="")
    assert [(e.name, e.user_id) for e in failed] == [("order_completed", "u3")]
    assert not Event.objects.filter(processed_at__isnull=True).exists()
    assert len(recipients(sendgrid)) == 30
