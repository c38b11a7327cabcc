"""The Admin index says, in words, when the pipeline is not keeping up, and links to what waits."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from django.utils import timezone

from campaigns.operations.heartbeats import dispatcher_beat, heartbeat_name
from tests import baker_recipes
from tests.conftest import track
from tests.world import rule_make


def index(admin_client, at=None):
    with time_machine.travel(at or timezone.now(), tick=False):
        return admin_client.get("/admin/").content.decode()


def beat(at):
    dispatcher_beat(name=heartbeat_name(), at=at)


def test_it_says_nothing_when_a_worker_runs_and_nothing_waits(admin_client):
    now = timezone.now()
    beat(now)
    assert 'id="pipeline-health"' not in index(admin_client, now)


def test_it_says_no_worker_runs_and_links_to_the_waiting_emails(admin_client):
    page = index(admin_client)
    assert "No worker is running: no qcluster dispatcher has ever checked in." in page
    assert 'href="/admin/campaigns/send/?state__exact=scheduled"' in page


def test_it_says_how_long_ago_the_last_worker_checked_in(admin_client):
    now = timezone.now()
    beat(now)
    assert "no qcluster dispatcher has checked in for 2 minutes" in index(admin_client, now + timedelta(minutes=2))


def test_it_says_matching_is_behind_and_links_to_the_waiting_events(admin_client, api, settings):
    settings.READY_MAX_EVENT_LAG = 60.0
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        api.batch([track("user_signup", "u1")])
    later = now + timedelta(minutes=5)
    beat(later)
    page = index(admin_client, later)
    assert "Matching is behind: the oldest new event has waited 5 minutes to be matched (the limit is 1 minute)" in page
    assert 'href="/admin/events/event/?processed=no"' in page
    assert "No worker is running" not in page


def test_it_says_emails_leave_late(admin_client, settings):
    settings.READY_MAX_SEND_LATENESS = 60.0
    now = timezone.now()
    rule = rule_make("welcome", "user_signup")
    contact = baker_recipes.contact.make()
    baker_recipes.scheduled_send.make(rule=rule, contact=contact, triggered_at=now, due_at=now)
    later = now + timedelta(minutes=10)
    beat(later)
    page = index(admin_client, later)
    assert "Emails are leaving late: the most overdue one is 10 minutes past its time" in page


def test_it_says_an_email_is_stuck_in_flight_when_no_sweep_settled_it(admin_client, settings):
    now = timezone.now()
    rule = rule_make("welcome", "user_signup")
    contact = baker_recipes.contact.make()
    baker_recipes.scheduled_send.make(
        rule=rule,
        contact=contact,
        triggered_at=now,
        due_at=now,
        state="sending",
        sending_started_at=now,
    )
    fresh = now + timedelta(seconds=settings.SENDING_STALE_AFTER)
    beat(fresh)
    assert "An email has been sending" not in index(admin_client, fresh)
    stuck = now + timedelta(hours=1)
    beat(stuck)
    page = index(admin_client, stuck)
    assert "An email has been sending for 1 hour: its worker stopped" in page
    assert 'href="/admin/campaigns/send/?state__exact=sending"' in page
