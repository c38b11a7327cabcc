"""An ambiguous send is resent once when the live webhook's silence says SendGrid never took it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from campaigns.models import Send
from campaigns.sending.ambiguous import unknown_sends_resend, webhook_live_after
from campaigns.sending.settlement import sends_sent_twice
from harness.sendgrid_server import Fault
from harness.sendgrid_webhook import sendgrid_events_for
from tests import baker_recipes
from tests.conftest import identify, run_worker, track
from tests.steps import dispatch_once
from tests.test_concurrency import in_parallel
from tests.world import rule_make


@dataclass
class World:
    start: datetime
    unknown: Send  # u1's welcome: the provider answered 500 and accepted nothing

    def sweep(self, after: timedelta) -> None:
        """The dispatcher's slow checks, `after` the unknown send's attempt."""
        dispatch_once(now=self.start + after, slow_checks=True)
        self.unknown.refresh_from_db()


def signup(api, user_id: str, at: datetime) -> Send:
    """A welcome for a new user, matched and delivered at `at`."""
    with time_machine.travel(at, tick=False):
        api.batch([identify(user_id, f"{user_id}@example.com"), track("user_signup", user_id)])
    run_worker(at=at)
    return Send.objects.get(contact__user_id=user_id, resend_of=None)


@pytest.fixture
def world(api, sendgrid) -> World:
    rule_make("welcome", "user_signup")
    start = timezone.now()
    sendgrid.fail_next(Fault(kind="status", status=500))
    unknown = signup(api, "u1", start)
    assert unknown.state == "unknown" and sendgrid.accepted == []
    return World(start=start, unknown=unknown)


def later_send_reported(api, sendgrid, webhook, world: World) -> Send:
    """u2 signs up a minute later; SendGrid takes it and its webhook posts "processed" for it."""
    later = signup(api, "u2", world.start + timedelta(minutes=1))
    assert later.state == "sent"
    with time_machine.travel(world.start + timedelta(minutes=1, seconds=5), tick=False):
        assert webhook.post(sendgrid_events_for(sendgrid.accepted[-1], "processed")).status_code == 200
    return later


def resend_after(settings) -> timedelta:
    return timedelta(seconds=settings.AMBIGUOUS_RESEND_AFTER + 1)


def test_it_resends_once_when_the_webhook_reported_later_sends_but_nothing_for_this_one(
    api, sendgrid, webhook, world, settings
):
    later_send_reported(api, sendgrid, webhook, world)

    world.sweep(resend_after(settings) - timedelta(minutes=1))
    assert world.unknown.state == "unknown"
    world.sweep(resend_after(settings))
    assert world.unknown.state == "not_accepted"
    [resend] = world.unknown.resends.all()
    assert world.unknown.reason == (
        f"not accepted (webhook live, no event of its own): resent automatically as #{resend.pk}"
    )
    assert resend.reason == f"automatic resend of send #{world.unknown.pk}: not accepted, webhook live"

    for minutes in (16, 60, 24 * 60):
        run_worker(at=world.start + timedelta(minutes=minutes))
        world.sweep(timedelta(minutes=minutes))
    # Exactly one new provider call, for u1, under a key of its own; u2's email was the only other.
    assert [m.to for m in sendgrid.accepted] == [["u2@example.com"], ["u1@example.com"]]
    assert sendgrid.keys()[f"{world.unknown.dedupe_key}#resend-1"] == 1
    assert sendgrid.requests == 3
    resend.refresh_from_db()
    assert resend.state == "sent"


def test_without_webhook_events_for_later_sends_it_is_abandoned_as_before(api, sendgrid, world, settings):
    # A later send was accepted, but the webhook has posted nothing since: it may be down.
    signup(api, "u2", world.start + timedelta(minutes=1))

    world.sweep(resend_after(settings))
    assert world.unknown.state == "unknown"
    world.sweep(timedelta(seconds=settings.UNKNOWN_GRACE_SECONDS + 1))
    assert world.unknown.state == "abandoned"
    assert not world.unknown.resends.exists()
    assert sendgrid.requests == 2


def test_events_only_for_earlier_sends_do_not_show_the_webhook_live(api, sendgrid, webhook, world, settings):
    earlier = baker_recipes.scheduled_send.make(
        rule=world.unknown.rule,
        contact=world.unknown.contact,
        state=Send.State.SENT,
        triggered_at=world.start,
        due_at=world.start,
        sending_started_at=world.start - timedelta(minutes=1),
    )
    earlier.provider_events.create(event_id="e1", event_type="delivered")

    assert not webhook_live_after(world.unknown.sending_started_at, now=world.start + timedelta(hours=1))
    world.sweep(resend_after(settings))
    assert world.unknown.state == "unknown"


def test_evidence_of_its_own_settles_it_as_sent_and_nothing_is_resent(api, sendgrid, webhook, settings):
    rule_make("welcome", "user_signup")
    start = timezone.now()
    sendgrid.fail_next(Fault(kind="accept_then_drop"))
    unknown = signup(api, "u1", start)
    assert unknown.state == "unknown"
    world = World(start=start, unknown=unknown)
    accepted_first = sendgrid.accepted[0]
    later_send_reported(api, sendgrid, webhook, world)
    with time_machine.travel(start + timedelta(minutes=2), tick=False):
        webhook.post(sendgrid_events_for(accepted_first, "delivered"))

    world.sweep(resend_after(settings))
    assert world.unknown.state == "sent"
    assert world.unknown.reason.startswith("settled by webhook evidence: delivered")
    assert not world.unknown.resends.exists()
    assert sendgrid.requests == 2


@pytest.mark.django_db(transaction=True)
def test_two_hosts_sweeping_at_once_make_one_resend(api, sendgrid, webhook, world, settings):
    later_send_reported(api, sendgrid, webhook, world)
    now = world.start + resend_after(settings)

    assert in_parallel(lambda n: unknown_sends_resend(now=now)) == []

    assert Send.objects.filter(resend_of=world.unknown).count() == 1
    run_worker(at=now)
    assert sendgrid.keys()[f"{world.unknown.dedupe_key}#resend-1"] == 1
    assert len(sendgrid.accepted) == 2


def test_a_resend_that_ends_ambiguous_again_goes_to_a_person(api, sendgrid, webhook, world, settings):
    later_send_reported(api, sendgrid, webhook, world)
    world.sweep(resend_after(settings))
    [resend] = world.unknown.resends.all()
    sendgrid.fail_next(Fault(kind="status", status=500))
    retry_at = world.start + resend_after(settings)
    run_worker(at=retry_at)
    resend.refresh_from_db()
    assert resend.state == "unknown"
    # The webhook keeps reporting later sends, yet a resend is never resent by itself.
    signup(api, "u3", retry_at + timedelta(minutes=1))
    with time_machine.travel(retry_at + timedelta(minutes=2), tick=False):
        webhook.post(sendgrid_events_for(sendgrid.accepted[-1], "processed"))

    dispatch_once(now=retry_at + resend_after(settings), slow_checks=True)
    resend.refresh_from_db()
    assert resend.state == "unknown" and not resend.resends.exists()
    dispatch_once(now=retry_at + timedelta(seconds=settings.UNKNOWN_GRACE_SECONDS + 1), slow_checks=True)
    resend.refresh_from_db()
    assert resend.state == "abandoned"
    assert Send.objects.filter(resend_of__isnull=False).count() == 1


def test_asking_a_person_keeps_todays_behaviour(api, sendgrid, webhook, world, settings):
    settings.AMBIGUOUS_SEND_POLICY = "ask_a_person"
    later_send_reported(api, sendgrid, webhook, world)

    world.sweep(resend_after(settings))
    assert world.unknown.state == "unknown"
    world.sweep(timedelta(seconds=settings.UNKNOWN_GRACE_SECONDS + 1))
    assert world.unknown.state == "abandoned"
    assert not world.unknown.resends.exists()
    assert sendgrid.requests == 2


def test_a_late_event_for_the_original_after_the_resend_is_recorded_and_flagged(
    api, sendgrid, webhook, settings, admin_client
):
    # SendGrid accepted it and answered too late; its events are delayed far beyond the usual.
    rule_make("welcome", "user_signup")
    start = timezone.now()
    sendgrid.fail_next(Fault(kind="accept_then_drop"))
    world = World(start=start, unknown=signup(api, "u1", start))
    accepted_first = sendgrid.accepted[0]
    later_send_reported(api, sendgrid, webhook, world)
    world.sweep(resend_after(settings))
    run_worker(at=start + resend_after(settings))
    [resend] = world.unknown.resends.all()

    with time_machine.travel(start + timedelta(hours=1), tick=False):
        webhook.post(sendgrid_events_for(accepted_first, "delivered"))

    world.unknown.refresh_from_db()
    assert world.unknown.state == "sent"
    assert world.unknown.reason.startswith(f"accepted after all, after its resend as #{resend.pk}: the person may")
    assert world.unknown.provider_events.count() == 1
    assert list(sends_sent_twice()) == [Send.objects.get(pk=resend.pk)]
    page = admin_client.get("/admin/").content.decode()
    assert "1 person may have got an email twice" in page
    listed = admin_client.get("/admin/campaigns/send/", {"attention": "twice"}).context["cl"].result_list
    assert [s.pk for s in listed] == [resend.pk]


def test_evidence_for_the_original_before_its_resend_goes_out_cancels_the_resend(api, sendgrid, webhook, settings):
    rule_make("welcome", "user_signup")
    start = timezone.now()
    sendgrid.fail_next(Fault(kind="accept_then_drop"))
    world = World(start=start, unknown=signup(api, "u1", start))
    accepted_first = sendgrid.accepted[0]
    later_send_reported(api, sendgrid, webhook, world)
    world.sweep(resend_after(settings))
    [resend] = world.unknown.resends.all()

    with time_machine.travel(start + resend_after(settings), tick=False):
        webhook.post(sendgrid_events_for(accepted_first, "delivered"))
    run_worker(at=start + resend_after(settings))

    resend.refresh_from_db()
    assert (resend.state, resend.reason) == (
        "cancelled",
        f"send #{world.unknown.pk}, which this one resends, was accepted after all",
    )
    world.unknown.refresh_from_db()
    assert world.unknown.state == "sent" and world.unknown.reason.startswith("settled by webhook evidence")
    assert [m.to for m in sendgrid.accepted] == [["u1@example.com"], ["u2@example.com"]]
    assert not sends_sent_twice().exists()


def test_the_send_page_and_the_events_trace_say_it_was_resent_automatically_and_why(
    api, sendgrid, webhook, world, settings, admin_client
):
    later_send_reported(api, sendgrid, webhook, world)
    world.sweep(resend_after(settings))
    [resend] = world.unknown.resends.all()

    page = admin_client.get(f"/admin/campaigns/send/{world.unknown.pk}/change/").content.decode()
    assert f"not accepted (webhook live, no event of its own): resent automatically as #{resend.pk}" in page
    assert f'href="/admin/campaigns/send/{resend.pk}/change/">#{resend.pk} (scheduled)</a>' in page
    trace = admin_client.get(f"/admin/events/event/{world.unknown.event_id}/change/").content.decode()
    assert (
        f"not_accepted</a>: not accepted (webhook live, no event of its own): resent automatically as #{resend.pk}"
        in trace
    )
