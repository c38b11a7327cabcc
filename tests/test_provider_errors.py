"""What each provider failure proves, and what the send does next. Never twice, never lost."""

from __future__ import annotations

import email.utils
import socket
from datetime import timedelta

import pytest
from anymail.exceptions import AnymailCancelSend, AnymailError
from anymail.signals import post_send, pre_send
from django.utils import timezone

from campaigns.models import IdempotencyKey, Send
from harness.sendgrid_server import API_KEY, Fault
from tests.conftest import identify, run_worker, track
from tests.world import rule_make


@pytest.fixture
def welcome(api, sendgrid):
    """A welcome email whose send is due now: posted and matched, not yet delivered."""
    from tests.steps import events_process_pending

    rule_make("welcome", "user_signup")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    events_process_pending()
    return Send.objects.get()


def closed_port_url() -> str:
    # Bind, read the port, close: nothing listens there, so a connection is refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v3/"


def anymail(settings, **overrides: object) -> None:
    settings.ANYMAIL = {**settings.ANYMAIL, **overrides}


def deliver_at(at):
    run_worker(at=at)


def seconds_between(a, b) -> float:
    return abs((a - b).total_seconds())


def test_a_refused_connection_releases_the_key_and_retries_later_exactly_once(welcome, sendgrid, settings):
    working_url = settings.ANYMAIL["SENDGRID_API_URL"]
    anymail(settings, SENDGRID_API_URL=closed_port_url())
    now = timezone.now()
    deliver_at(now)
    welcome.refresh_from_db()
    assert (welcome.state, welcome.attempts) == ("scheduled", 1)
    assert seconds_between(welcome.due_at, now + timedelta(seconds=30)) < 1
    assert "not sent (attempt 1)" in welcome.reason
    assert not IdempotencyKey.objects.exists()
    anymail(settings, SENDGRID_API_URL=working_url)
    deliver_at(now + timedelta(seconds=10))
    assert sendgrid.accepted == []
    deliver_at(now + timedelta(seconds=31))
    deliver_at(now + timedelta(minutes=5))
    assert list(sendgrid.keys().values()) == [1]
    welcome.refresh_from_db()
    assert (welcome.state, welcome.attempts) == ("sent", 2)


def test_a_429_is_retried_after_retry_after(welcome, sendgrid):
    sendgrid.fail_next(Fault(kind="status", status=429, headers={"Retry-After": "120"}))
    now = timezone.now()
    deliver_at(now)
    welcome.refresh_from_db()
    assert welcome.state == "scheduled"
    assert seconds_between(welcome.due_at, now + timedelta(seconds=120)) < 1
    deliver_at(now + timedelta(seconds=119))
    assert sendgrid.accepted == []
    deliver_at(now + timedelta(seconds=121))
    assert list(sendgrid.keys().values()) == [1]


def test_a_401_is_retried_once_the_key_is_fixed(welcome, sendgrid, settings):
    anymail(settings, SENDGRID_API_KEY="SG.revoked")
    now = timezone.now()
    deliver_at(now)
    welcome.refresh_from_db()
    assert (welcome.state, sendgrid.accepted) == ("scheduled", [])
    assert "401" in welcome.last_error
    anymail(settings, SENDGRID_API_KEY=API_KEY)
    deliver_at(now + timedelta(minutes=1))
    assert list(sendgrid.keys().values()) == [1]


def test_a_400_fails_the_send_and_it_is_not_retried(welcome, sendgrid):
    sendgrid.fail_next(Fault(kind="status", status=400))
    deliver_at(timezone.now())
    deliver_at(timezone.now() + timedelta(days=1))
    welcome.refresh_from_db()
    assert welcome.state == "failed"
    assert welcome.reason == "not sent after 1 attempt(s): provider refused it"
    assert sendgrid.requests == 1 and sendgrid.accepted == []
    # Proven not sent, so the key is free again: a person may send it by hand.
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize(
    ("fault", "accepted"),
    [
        (Fault(kind="status", status=500), 0),
        (Fault(kind="status", status=503), 0),
        (Fault(kind="accept_then_drop"), 1),
        (Fault(kind="accept_then_delay", delay=1.0), 1),
    ],
    ids=["500", "503", "accept_then_drop", "accept_then_timeout"],
)
def test_an_ambiguous_answer_is_unknown_and_never_sent_again(welcome, sendgrid, settings, fault, accepted):
    # A short client timeout, so "accept then answer late" is a read timeout for us.
    anymail(settings, REQUESTS_TIMEOUT=0.3)
    sendgrid.fail_next(fault)
    deliver_at(timezone.now())
    welcome.refresh_from_db()
    assert welcome.state == "unknown"
    assert "not retried" in welcome.reason
    for hours in (1, 24, 24 * 30):
        deliver_at(timezone.now() + timedelta(hours=hours))
    assert sendgrid.requests == 1
    assert len(sendgrid.accepted) == accepted
    assert IdempotencyKey.objects.get().key == welcome.dedupe_key


def test_retries_stop_after_the_maximum_attempts(welcome, sendgrid, settings):
    settings.SEND_MAX_ATTEMPTS = 3
    sendgrid.fail_next(*[Fault(kind="status", status=429)] * 3)
    now = timezone.now()
    for minutes in (0, 1, 3, 10, 60):
        deliver_at(now + timedelta(minutes=minutes))
    welcome.refresh_from_db()
    assert (welcome.state, welcome.attempts) == ("failed", 3)
    assert welcome.reason == "not sent after 3 attempts"
    assert sendgrid.requests == 3 and sendgrid.accepted == []


def test_a_retry_after_date_is_honoured(welcome, sendgrid):
    now = timezone.now()
    when = email.utils.format_datetime(now + timedelta(seconds=90), usegmt=True)
    sendgrid.fail_next(Fault(kind="status", status=429, headers={"Retry-After": when}))
    deliver_at(now)
    welcome.refresh_from_db()
    assert welcome.state == "scheduled"
    assert seconds_between(welcome.due_at, now + timedelta(seconds=90)) < 2


def test_a_garbled_retry_after_falls_back_to_backoff(welcome, sendgrid):
    sendgrid.fail_next(Fault(kind="status", status=429, headers={"Retry-After": "soon, maybe"}))
    now = timezone.now()
    deliver_at(now)
    welcome.refresh_from_db()
    assert welcome.state == "scheduled"
    assert seconds_between(welcome.due_at, now + timedelta(seconds=30)) < 1


def test_an_error_after_sendgrid_accepted_still_records_sent(welcome, sendgrid):
    def broken_receiver(**kwargs: object) -> None:
        raise AnymailError("the tracking store is down")

    post_send.connect(broken_receiver)
    try:
        deliver_at(timezone.now())
    finally:
        post_send.disconnect(broken_receiver)
    welcome.refresh_from_db()
    assert (welcome.state, welcome.provider_message_id) == ("sent", sendgrid.accepted[0].message_id)
    deliver_at(timezone.now() + timedelta(days=1))
    assert list(sendgrid.keys().values()) == [1]


def test_a_send_cancelled_by_a_pre_send_receiver_is_not_recorded_as_sent(welcome, sendgrid):
    def cancel(**kwargs: object) -> None:
        raise AnymailCancelSend("suppressed by policy")

    pre_send.connect(cancel)
    try:
        deliver_at(timezone.now())
    finally:
        pre_send.disconnect(cancel)
    welcome.refresh_from_db()
    assert welcome.state == "failed"
    assert sendgrid.requests == 0
