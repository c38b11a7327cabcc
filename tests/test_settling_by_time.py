"""Sends nobody can settle from evidence go to a person: stale `sending` → unknown → abandoned."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from campaigns.models import Send
from campaigns.sending.provider import provider_send
from campaigns.sending.settlement import unknown_sends_abandon
from harness.sendgrid_server import Fault
from tests.conftest import identify, run_worker, track
from tests.steps import dispatch_once, send_claim
from tests.world import rule_make


@pytest.fixture
def welcome(api, sendgrid):
    rule_make("welcome", "user_signup")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    from tests.steps import events_process_pending

    events_process_pending()
    return Send.objects.get()


def test_an_unknown_send_without_evidence_is_abandoned_after_the_grace_window(welcome, sendgrid, settings):
    sendgrid.fail_next(Fault(kind="status", status=503))
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        run_worker()
    grace = timedelta(seconds=settings.UNKNOWN_GRACE_SECONDS)

    assert unknown_sends_abandon(now=start + grace - timedelta(seconds=1)) == 0
    welcome.refresh_from_db()
    assert welcome.state == "unknown"

    assert unknown_sends_abandon(now=start + grace + timedelta(seconds=1)) == 1
    welcome.refresh_from_db()
    assert welcome.state == "abandoned"
    assert welcome.reason.startswith("no webhook evidence within 2:00:00 of the attempt")
    # Abandoned is for a person: nothing sends it again by itself, however long we wait.
    for days in (1, 30):
        run_worker(at=start + timedelta(days=days))
    assert sendgrid.requests == 1


def test_the_dispatchers_slow_checks_take_a_dead_workers_send_to_unknown_then_abandoned(welcome, sendgrid, settings):
    start = timezone.now()
    claim = send_claim(welcome.pk, now=start)
    assert claim is not None
    provider_send(claim.message)  # accepted, and the worker died before recording it

    dispatch_once(now=start + timedelta(seconds=settings.SENDING_STALE_AFTER + 1), slow_checks=True)
    welcome.refresh_from_db()
    assert welcome.state == "unknown"

    dispatch_once(now=start + timedelta(seconds=settings.UNKNOWN_GRACE_SECONDS + 1), slow_checks=False)
    welcome.refresh_from_db()
    assert welcome.state == "unknown"

    dispatch_once(now=start + timedelta(seconds=settings.UNKNOWN_GRACE_SECONDS + 1), slow_checks=True)
    welcome.refresh_from_db()
    assert welcome.state == "abandoned"
    assert list(sendgrid.keys().values()) == [1]


def test_only_unknown_sends_are_abandoned(welcome, sendgrid, settings):
    run_worker()
    welcome.refresh_from_db()
    assert welcome.state == "sent"

    unknown_sends_abandon(now=timezone.now() + timedelta(days=1))

    welcome.refresh_from_db()
    assert welcome.state == "sent"
