"""Cooldown, paused rules and missing addresses: decided when the event arrives, and again when due."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from django.utils import timezone

from campaigns.models import Rule, Send
from campaigns.sending.delivery import sends_deliver
from events.models import Contact
from tests import baker_recipes
from tests.conftest import identify, later, run_worker, track
from tests.steps import events_process_pending
from tests.world import decisions, minutes, rule_make, send_states


def test_a_second_event_within_the_cooldown_is_skipped(api, sendgrid):
    rule_make("browse", "product_viewed", cooldown=timedelta(days=1))
    api.batch([identify("u1", "u1@example.com"), track("product_viewed", "u1")])
    run_worker()
    api.batch([track("product_viewed", "u1")])
    run_worker(at=later(hours=1))
    assert decisions() == [("product_viewed", "scheduled"), ("product_viewed", "cooldown")]
    assert len(sendgrid.accepted) == 1


def test_an_event_after_the_cooldown_sends_again(api, sendgrid):
    rule_make("browse", "product_viewed", cooldown=timedelta(hours=1))
    api.batch([identify("u1", "u1@example.com"), track("product_viewed", "u1")])
    run_worker()
    two_hours_later = later(hours=2)
    with time_machine.travel(two_hours_later, tick=True):
        api.batch([track("product_viewed", "u1")])
    run_worker(at=two_hours_later)
    assert len(sendgrid.accepted) == 2


def test_the_cooldown_is_checked_again_when_the_send_is_due(api, sendgrid):
    rule = rule_make("recovery", "cart_abandoned", delay=minutes(30))
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1"), track("cart_abandoned", "u1")])
    run_worker()
    assert send_states() == [("recovery", "scheduled"), ("recovery", "scheduled")]
    # The marketer adds a cooldown while both are waiting: only one may go out.
    Rule.objects.filter(pk=rule.pk).update(cooldown=timedelta(days=1))
    run_worker(at=later(minutes=31))
    assert send_states() == [("recovery", "sent"), ("recovery", "cancelled")]
    assert Send.objects.get(state="cancelled").reason.startswith("cooldown")
    assert len(sendgrid.accepted) == 1


def test_a_rule_paused_before_the_send_is_due_cancels_it(api, sendgrid):
    rule = rule_make("recovery", "cart_abandoned", delay=minutes(30))
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1")])
    run_worker()
    Rule.objects.filter(pk=rule.pk).update(active=False)
    run_worker(at=later(minutes=31))
    send = Send.objects.get()
    assert (send.state, send.reason) == ("cancelled", "rule 'recovery' was paused before the send was due")
    assert sendgrid.accepted == []


def test_a_paused_rule_decides_nothing_for_new_events(api, sendgrid):
    rule_make("recovery", "cart_abandoned", active=False)
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1")])
    run_worker()
    assert decisions() == [("cart_abandoned", "inactive")]
    assert sendgrid.accepted == []


def test_a_contact_without_email_is_skipped(api, sendgrid):
    rule_make("welcome", "user_signup")
    api.batch([track("user_signup", "u1"), {"type": "identify", "userId": "u2", "traits": {"name": "No Mail"}}])
    api.batch([track("user_signup", "u2")])
    run_worker()
    assert decisions() == [("user_signup", "no_email"), ("user_signup", "no_email")]
    assert Send.objects.count() == 0
    assert sendgrid.accepted == []


def test_an_address_erased_before_the_send_is_due_suppresses_it(api, sendgrid):
    rule_make("recovery", "cart_abandoned", delay=minutes(30))
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1")])
    run_worker()
    Contact.objects.filter(user_id="u1").update(email="")
    run_worker(at=later(minutes=31))
    assert send_states() == [("recovery", "suppressed")]
    assert sendgrid.accepted == []


def test_an_abandoned_send_counts_for_the_cooldown_but_not_against_its_own_resend(api, sendgrid):
    rule = rule_make("nudge", "cart_abandoned")
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1"), track("cart_abandoned", "u1")])
    events_process_pending()
    first, second = Send.objects.order_by("pk")
    # The first may have arrived: the provider's answer was ambiguous and no evidence came.
    Send.objects.filter(pk=first.pk).update(state=Send.State.ABANDONED, sending_started_at=timezone.now())
    rule.cooldown = timedelta(days=1)
    rule.save()
    sends_deliver([second.pk])
    second.refresh_from_db()
    assert (second.state, second.reason[:8]) == ("cancelled", "cooldown")
    resend = baker_recipes.scheduled_send.make(
        rule=rule, contact=first.contact, event=first.event, triggered_at=first.triggered_at,
        dedupe_key=f"{first.dedupe_key}#resend-1", due_at=timezone.now(), resend_of=first,
    )  # fmt: skip
    sends_deliver([resend.pk])
    resend.refresh_from_db()
    assert resend.state == Send.State.SENT
    assert [m.key for m in sendgrid.accepted] == [resend.dedupe_key]
