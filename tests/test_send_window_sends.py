"""Send windows applied: matching moves a send into the contact's window, and the claim checks again."""

from __future__ import annotations

from datetime import datetime, time

from campaigns.models import Decision, Rule, Send
from tests import baker_recipes
from tests.conftest import identify, run_worker, track
from tests.world import minutes, post_at, rule_make

# 03:00 in Paris (winter time) on a Monday.
NIGHT = datetime.fromisoformat("2026-03-02T02:00:00+00:00")
PARIS_EIGHT = datetime.fromisoformat("2026-03-02T07:00:00+00:00")


def test_a_send_due_at_3am_local_is_scheduled_for_the_window_opening(api, sendgrid):
    rule_make("welcome", "user_signup", window_start=time(8), window_end=time(20))
    post_at(api, NIGHT, [identify("u1", "u1@example.com", timezone="Europe/Paris"), track("user_signup", "u1")])
    run_worker(at=NIGHT)
    decision = Decision.objects.get()
    assert decision.due_at == PARIS_EIGHT
    assert decision.detail.endswith(
        "moved to the send window opening at 2026-03-02 07:00:00 UTC"
        " = 2026-03-02 08:00:00 contact's time (Europe/Paris)"
    )
    assert sendgrid.accepted == []
    run_worker(at=PARIS_EIGHT)
    assert len(sendgrid.accepted) == 1


def test_the_default_window_and_fallback_zone_come_from_the_campaign_settings(api, sendgrid):
    baker_recipes.campaign_settings.make(
        window_start=time(9), window_end=time(17), fallback_timezone="America/New_York"
    )
    rule_make("welcome", "user_signup")
    post_at(api, NIGHT, [identify("u1", "u1@example.com"), track("user_signup", "u1")])
    run_worker(at=NIGHT)
    # 09:00 in New York (EST) is 14:00 UTC.
    assert Send.objects.get().due_at == datetime.fromisoformat("2026-03-02T14:00:00+00:00")


def test_a_rules_own_window_wins_over_the_default(api, sendgrid):
    baker_recipes.campaign_settings.make(window_start=time(9), window_end=time(17))
    rule_make("welcome", "user_signup", window_start=time(0), window_end=time(0))
    post_at(api, NIGHT, [identify("u1", "u1@example.com"), track("user_signup", "u1")])
    run_worker(at=NIGHT)
    assert len(sendgrid.accepted) == 1


def test_a_send_claimed_outside_its_changed_window_is_rescheduled_not_cancelled(api, sendgrid):
    rule = rule_make("recovery", "cart_abandoned", delay=minutes(30))
    post_at(api, NIGHT, [identify("u1", "u1@example.com", timezone="Europe/Paris"), track("cart_abandoned", "u1")])
    run_worker(at=NIGHT)
    # While it waits, the marketer adds quiet hours.
    Rule.objects.filter(pk=rule.pk).update(window_start=time(8), window_end=time(20))
    run_worker(at=NIGHT.replace(minute=31))
    send = Send.objects.get()
    assert (send.state, send.due_at, send.enqueued_at) == ("scheduled", PARIS_EIGHT, None)
    assert send.reason == (
        "outside the send window (between 08:00 and 20:00); moved to the next opening at "
        "2026-03-02 07:00:00 UTC = 2026-03-02 08:00:00 contact's time (Europe/Paris)"
    )
    assert sendgrid.accepted == []
    run_worker(at=PARIS_EIGHT)
    assert Send.objects.get().state == "sent"
    assert len(sendgrid.accepted) == 1
