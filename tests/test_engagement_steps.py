"""Steps that depend on engagement: a rule's condition reads what the contact did with an earlier
rule's email (sent, opened, clicked, converted, or not), at matching and again when the email is due.

The events come in through the ingest API and the opens through SendGrid's signed Event Webhook,
as in production.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from campaigns.matching.engagement import EngagementFact, engagement_holds
from campaigns.models import Decision, Send
from harness.sendgrid_webhook import sendgrid_events_for
from tests import baker_recipes
from tests.conftest import identify, later, run_worker, track
from tests.world import rule_make, send_states, template_make


@pytest.fixture
def welcome_series(db):
    """Day 0 at once; the day-2 reminder only if the day-0 email was not opened."""
    rule_make("Day 0", "user_signup", template=template_make("Welcome", subject="Welcome!"))
    reminder = rule_make(
        "Day 2", "user_signup", template=template_make("Reminder", subject="Did you see this?"), delay=timedelta(days=2)
    )
    baker_recipes.engagement_condition.make(rule=reminder, key="Day 0", operator="not_opened")


def test_the_day_two_reminder_goes_when_day_zero_was_not_opened(welcome_series, api, sendgrid, webhook):
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    run_worker()
    webhook.post(sendgrid_events_for(sendgrid.accepted[0], "delivered"))

    run_worker(at=later(days=2, minutes=1))

    assert [m.subject for m in sendgrid.accepted] == ["Welcome!", "Did you see this?"]
    assert send_states() == [("Day 0", "sent"), ("Day 2", "sent")]


def test_an_open_during_the_delay_cancels_the_reminder_when_it_falls_due(welcome_series, api, sendgrid, webhook):
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    run_worker()
    webhook.post(sendgrid_events_for(sendgrid.accepted[0], "open"))

    run_worker(at=later(days=2, minutes=1))

    assert [m.subject for m in sendgrid.accepted] == ["Welcome!"]
    assert send_states() == [("Day 0", "sent"), ("Day 2", "cancelled")]
    reminder = Send.objects.get(rule__name="Day 2")
    assert reminder.reason == "condition not met when due: the email of rule 'Day 0' was not opened"
    # Matching scheduled it and said the condition would be judged again.
    decision = Decision.objects.get(rule__name="Day 2")
    assert decision.reason == "scheduled"
    assert "checked again when due: the email of rule 'Day 0' was not opened" in decision.detail


@pytest.mark.parametrize(("opened", "states"), [(True, ["sent", "sent"]), (False, ["sent", "cancelled"])])
def test_a_step_for_those_who_opened_waits_for_the_open_until_it_is_due(db, api, sendgrid, webhook, opened, states):
    # At matching the day-0 email is only scheduled: nothing is known yet, so the step is scheduled
    # and the open (or its absence) decides when the step falls due.
    rule_make("Day 0", "user_signup", template=template_make("Welcome", subject="Welcome!"))
    upsell = rule_make(
        "Upsell", "user_signup", template=template_make("Upsell", subject="Go pro"), delay=timedelta(days=1)
    )
    baker_recipes.engagement_condition.make(rule=upsell, key="Day 0", operator="opened")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    run_worker()
    if opened:
        webhook.post(sendgrid_events_for(sendgrid.accepted[0], "open"))

    run_worker(at=later(days=1, minutes=1))

    assert [state for _, state in send_states()] == states
    if not opened:
        reason = Send.objects.get(rule=upsell).reason
        assert reason == "condition not met when due: the email of rule 'Day 0' was opened"


def test_a_step_claimed_with_the_earlier_email_in_one_batch_sees_it_sent(db, sendgrid):
    from campaigns.sending.delivery import sends_deliver

    day_zero = rule_make("Day 0", "user_signup")
    follow_up = rule_make("Follow-up", "user_signup", template=template_make("Follow-up", subject="And then"))
    baker_recipes.engagement_condition.make(rule=follow_up, key="Day 0", operator="sent")
    contact = baker_recipes.contact.make(user_id="u1", email="u1@example.com")
    # Both fell due while no worker ran; they are claimed together, day 0 first.
    sends = [baker_recipes.scheduled_send.make(rule=rule, contact=contact) for rule in (day_zero, follow_up)]

    sends_deliver([send.pk for send in sends])

    assert send_states() == [("Day 0", "sent"), ("Follow-up", "sent")]


def test_a_step_that_needs_a_click_is_skipped_at_matching_when_there_was_none(db, api, sendgrid, webhook):
    rule_make("Welcome", "user_signup")
    offer = rule_make("Offer", "cart_abandoned", template=template_make("Offer", subject="An offer"))
    baker_recipes.engagement_condition.make(rule=offer, key="Welcome", operator="clicked")
    api.batch([identify("u1", "u1@example.com"), identify("u2", "u2@example.com")])
    api.batch([track("user_signup", "u1"), track("user_signup", "u2")])
    run_worker()
    clicked = next(m for m in sendgrid.accepted if m.to == ["u2@example.com"])
    webhook.post(sendgrid_events_for(clicked, "click", url="https://shop.example.com/"))

    api.batch([track("cart_abandoned", "u1"), track("cart_abandoned", "u2")])
    run_worker()

    offers = Decision.objects.filter(rule=offer).order_by("event__user_id")
    assert [(d.event.user_id, d.reason) for d in offers] == [("u1", "condition_false"), ("u2", "scheduled")]
    assert offers[0].detail == "condition not met: the email of rule 'Welcome' was clicked"
    assert sorted(m.to[0] for m in sendgrid.accepted if m.subject == "An offer") == ["u2@example.com"]


def test_a_contact_who_never_got_the_earlier_email_has_not_opened_it(db, api, sendgrid):
    rule_make("Welcome", "user_signup")
    nudge = rule_make("Nudge", "cart_abandoned")
    baker_recipes.engagement_condition.make(rule=nudge, key="Welcome", operator="not_opened")
    sent_only = rule_make("Thanks", "cart_abandoned")
    baker_recipes.engagement_condition.make(rule=sent_only, key="Welcome", operator="sent")

    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1")])
    run_worker()

    assert dict(Decision.objects.values_list("rule__name", "reason")) == {
        "Nudge": "scheduled",
        "Thanks": "condition_false",
    }


@pytest.mark.parametrize(
    ("operator", "fact", "holds"),
    [
        ("sent", EngagementFact(send_id=1, sent_at=later()), True),
        ("not_sent", EngagementFact(send_id=1, sent_at=later()), False),
        ("sent", EngagementFact(send_id=1, pending=True), False),
        ("opened", EngagementFact(send_id=1, sent_at=later(), opened_at=later()), True),
        ("not_opened", EngagementFact(send_id=1, sent_at=later(), opened_at=later()), False),
        ("not_opened", None, True),
        ("clicked", EngagementFact(send_id=1, sent_at=later(), clicked_at=later()), True),
        ("not_clicked", EngagementFact(send_id=1, sent_at=later()), True),
        ("converted", EngagementFact(send_id=1, sent_at=later(), converted_at=later()), True),
        ("not_converted", EngagementFact(send_id=1, sent_at=later(), converted_at=later()), False),
    ],
)
def test_each_operator_reads_the_most_recent_email(operator, fact, holds):
    assert engagement_holds(operator, fact) is holds
