"""End to end: Segment's Python SDK → gunicorn → qcluster → Anymail's SendGrid backend → the ledger.

Nothing here calls the application in-process. Each test starts a real gunicorn and a real
`manage.py qcluster` against the test database, posts events the way a customer's backend does,
and asserts what the local SendGrid-compatible server received, i.e. what people would get.

The processes are started per test (≈1.5 s, in parallel) rather than per module: pytest-django
then flushes the database after they have stopped, so the flush never waits on (or deadlocks
with) a worker that is polling the queue, and every test starts from an empty database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection
from segment.analytics import Client as SegmentClient

from campaigns.authoring.demo import DEMO_CAMPAIGN
from campaigns.authoring.transfer import document_loads, rules_import
from campaigns.models import Category, DedupePolicy, Rule, Send
from events.models import Event, WriteKey
from harness.processes import (
    Deployment,
    database_sessions_wait,
    database_url,
    deployment_start,
    process_env,
    wait_until,
)
from harness.sendgrid_server import API_KEY, Accepted, SendGridServer

pytestmark = pytest.mark.e2e

# Generous: a 2-core CI machine running two Django processes and the test may be slow, and a
# wait returns as soon as its condition holds.
TIMEOUT = 30.0
CART_DELAY = timedelta(minutes=60)
# Events "from the past" make a 60-minute delay fall due a few seconds from now.
NEARLY_DUE = CART_DELAY - timedelta(seconds=3)


@dataclass
class Campaigns:
    welcome: Rule
    recovery: Rule
    receipt: Rule


@pytest.fixture
def campaigns(transactional_db: None) -> Campaigns:
    """The demo campaign a fresh installation imports (`manage.py demo_setup`): the issue's three emails."""
    rules_import(document_loads(DEMO_CAMPAIGN.read_text(encoding="utf-8")))
    rules = {rule.trigger_event: rule for rule in Rule.objects.select_related("template")}
    loaded = Campaigns(welcome=rules["user_signup"], recovery=rules["cart_abandoned"], receipt=rules["order_completed"])
    # The premises of these tests, checked so that a change to the demo file fails here, by name.
    assert (loaded.welcome.delay, loaded.welcome.template.category) == (timedelta(0), Category.TRANSACTIONAL)
    assert (loaded.recovery.delay, loaded.recovery.exit_events) == (CART_DELAY, ["order_completed"])
    assert loaded.recovery.template.category == Category.MARKETING
    assert (loaded.receipt.delay, loaded.receipt.dedupe_policy) == (timedelta(0), DedupePolicy.PER_EVENT)
    assert loaded.receipt.template.category == Category.TRANSACTIONAL
    return loaded


@pytest.fixture
def write_key(transactional_db: None) -> str:
    _, raw = WriteKey.issue(name="e2e backend")
    return raw


@pytest.fixture
def provider(sendgrid_server: SendGridServer) -> SendGridServer:
    sendgrid_server.reset()
    return sendgrid_server


@pytest.fixture
def broker_env() -> dict[str, str]:
    """Extra settings for the processes' task broker; the default is the ORM broker."""
    return {}


@pytest.fixture
def deployment(
    transactional_db: None, campaigns: Campaigns, provider: SendGridServer, tmp_path: Path, broker_env: dict[str, str]
) -> Iterator[Deployment]:
    """gunicorn and qcluster on the test database, stopped before pytest-django flushes it."""
    env = process_env(
        database_url=database_url(connection.settings_dict),
        secret_key=settings.SECRET_KEY,
        sendgrid_url=provider.url,
        api_key=API_KEY,
    )
    env.update(broker_env)
    running = deployment_start(env=env, log_dir=tmp_path)
    try:
        yield running
    finally:
        running.stop()
        # Captured output is shown only when the test fails: then these logs say what happened.
        print(running.logs())
    # So that pytest-django's flush and its final DROP DATABASE never meet a stopped process's session.
    database_sessions_wait()


@contextmanager
def segment(deployment: Deployment, write_key: str) -> Iterator[SegmentClient]:
    """Segment's official SDK as a backend uses it: calls queue messages, flush uploads them."""
    errors: list[Any] = []
    client = SegmentClient(
        write_key, host=deployment.base_url, max_retries=2, on_error=lambda error, batch: errors.append(error)
    )
    try:
        yield client
    finally:
        client.shutdown()
    assert not errors, f"the SDK could not upload: {errors}\n{deployment.logs()}"


def ago(delta: timedelta) -> datetime:
    return datetime.now(UTC) - delta


def emails_to(provider: SendGridServer, address: str) -> list[Accepted]:
    """What the provider accepted for this address, in arrival order."""
    return [m for m in list(provider.accepted) if address in m.to]


def send_of(rule: Rule, user_id: str, deployment: Deployment, *, state: str | None = None) -> Send:
    """Wait for the send the rule made for this user (in `state`, if given)."""
    sends = Send.objects.filter(rule=rule, contact__user_id=user_id)
    if state is not None:
        sends = sends.filter(state=state)
    return wait_until(
        lambda: sends.first(),
        what=f"a send of rule {rule.name!r} for {user_id}" + (f" in state {state}" if state else ""),
        timeout=TIMEOUT,
        processes=deployment.processes,
    )


def occurred_at(send: Send) -> datetime:
    """When the user acted, as the app recorded it from the event's timestamp."""
    assert send.event is not None, f"send {send.pk} has no event"
    return send.event.occurred_at


def settled(user_id: str, deployment: Deployment) -> None:
    """Wait until this user's events are matched and none of their sends is waiting or in flight."""

    def done() -> bool:
        unprocessed = Event.objects.filter(user_id=user_id, processed_at__isnull=True).exists()
        open_sends = Send.objects.filter(
            contact__user_id=user_id, state__in=[Send.State.SCHEDULED, Send.State.SENDING]
        ).exists()
        return Event.objects.filter(user_id=user_id).exists() and not unprocessed and not open_sends

    wait_until(done, what=f"{user_id}'s events and sends to settle", timeout=TIMEOUT, processes=deployment.processes)


def assert_no_key_accepted_twice(provider: SendGridServer) -> None:
    twice = {key: count for key, count in provider.keys().items() if count != 1}
    assert not twice, f"the provider accepted these idempotency keys more than once: {twice}"


def test_it_sends_the_welcome_email_for_a_signup_posted_with_segments_sdk(deployment, write_key, campaigns, provider):
    with segment(deployment, write_key) as analytics:
        analytics.identify("e2e-ann", {"email": "ann@example.com", "first_name": "Ann"})
        analytics.track("e2e-ann", "user_signup", {"plan": "free"})

    wait_until(
        lambda: emails_to(provider, "ann@example.com"),
        what="the welcome email to ann@example.com",
        timeout=TIMEOUT,
        processes=deployment.processes,
    )
    send = send_of(campaigns.welcome, "e2e-ann", deployment, state=Send.State.SENT)
    [email] = emails_to(provider, "ann@example.com")
    assert email.subject == "Welcome, Ann! Your account is ready"
    assert email.custom_args["triggermail_key"] == send.dedupe_key
    assert email.message_id == send.provider_message_id
    assert_no_key_accepted_twice(provider)


def test_it_sends_one_cart_recovery_email_when_the_delay_is_over(deployment, write_key, campaigns, provider):
    with segment(deployment, write_key) as analytics:
        analytics.identify("e2e-bob", {"email": "bob@example.com", "first_name": "Bob"})
        cart = {"products": [{"name": "Teapot", "quantity": 1, "price": 35}], "value": 35, "currency": "EUR"}
        analytics.track("e2e-bob", "cart_abandoned", cart, timestamp=ago(NEARLY_DUE))

    send = send_of(campaigns.recovery, "e2e-bob", deployment)
    assert send.due_at == send.triggered_at + CART_DELAY
    # Scheduled before it fell due, so the check on received_at below shows the worker waited.
    assert send.created_at < send.due_at, "the machine was too slow to observe the delay; rerun"

    [recovery] = wait_until(
        lambda: emails_to(provider, "bob@example.com"),
        what="the cart recovery email to bob@example.com",
        timeout=TIMEOUT,
        processes=deployment.processes,
    )
    assert recovery.subject == "You left something in your cart, Bob"
    assert "Teapot x 1, 35.00" in recovery.content("text/plain")
    assert recovery.received_at >= send.due_at.timestamp(), "the recovery email left before it was due"
    settled("e2e-bob", deployment)
    assert len(emails_to(provider, "bob@example.com")) == 1
    assert_no_key_accepted_twice(provider)


def test_it_sends_no_cart_recovery_when_the_order_completes_during_the_delay(
    deployment, write_key, campaigns, provider
):
    with segment(deployment, write_key) as analytics:
        analytics.identify("e2e-cid", {"email": "cid@example.com"})
        analytics.track("e2e-cid", "cart_abandoned", {"value": 20}, timestamp=ago(NEARLY_DUE))
        analytics.track("e2e-cid", "order_completed", {"order_id": "C-1", "total": 30})

    cancelled = send_of(campaigns.recovery, "e2e-cid", deployment, state=Send.State.CANCELLED)
    assert cancelled.reason.startswith("exit event order_completed")

    # A canary cart that falls due just after Cid's: once its email has arrived, the worker has
    # dispatched everything due before it, so a recovery for Cid would have been sent by then.
    with segment(deployment, write_key) as analytics:
        analytics.identify("e2e-canary", {"email": "canary@example.com"})
        canary_at = cancelled.due_at - CART_DELAY + timedelta(seconds=0.5)
        analytics.track("e2e-canary", "cart_abandoned", {"value": 5}, timestamp=canary_at)
    [canary] = wait_until(
        lambda: emails_to(provider, "canary@example.com"),
        what="the canary's cart recovery email",
        timeout=TIMEOUT,
        processes=deployment.processes,
    )
    assert canary.received_at >= cancelled.due_at.timestamp()
    settled("e2e-cid", deployment)

    assert [m.subject for m in emails_to(provider, "cid@example.com")] == ["Your receipt for order C-1"]
    cancelled.refresh_from_db()
    assert cancelled.state == Send.State.CANCELLED
    assert_no_key_accepted_twice(provider)


def test_it_sends_a_receipt_for_each_of_two_orders_on_the_same_day(deployment, write_key, campaigns, provider):
    with segment(deployment, write_key) as analytics:
        analytics.identify("e2e-dee", {"email": "dee@example.com"})
        analytics.track("e2e-dee", "order_completed", {"order_id": "D-1", "total": 12})
        analytics.track("e2e-dee", "order_completed", {"order_id": "D-2", "total": 99})

    wait_until(
        lambda: len(emails_to(provider, "dee@example.com")) >= 2,
        what="two receipts to dee@example.com",
        timeout=TIMEOUT,
        processes=deployment.processes,
    )
    settled("e2e-dee", deployment)
    subjects = sorted(m.subject for m in emails_to(provider, "dee@example.com"))
    assert subjects == ["Your receipt for order D-1", "Your receipt for order D-2"]
    assert_no_key_accepted_twice(provider)


def test_it_sends_one_email_when_the_same_batch_is_posted_twice(deployment, write_key, campaigns, provider):
    batch: dict[str, Any] = {
        "batch": [
            {"type": "identify", "userId": "e2e-eve", "traits": {"email": "eve@example.com"}, "messageId": "e2e-m-1"},
            {
                "type": "track",
                "userId": "e2e-eve",
                "event": "order_completed",
                "properties": {"order_id": "E-1", "total": 5},
                "messageId": "e2e-m-2",
            },
        ]
    }
    # An SDK retrying after a lost response sends exactly the same batch again.
    for attempt in (1, 2):
        response = requests.post(f"{deployment.base_url}/v1/batch", json=batch, auth=(write_key, ""), timeout=10)
        assert response.status_code == 200, f"attempt {attempt}: {response.status_code} {response.text}"
        assert response.json() == {"success": True}

    wait_until(
        lambda: emails_to(provider, "eve@example.com"),
        what="the receipt to eve@example.com",
        timeout=TIMEOUT,
        processes=deployment.processes,
    )
    settled("e2e-eve", deployment)
    assert Event.objects.filter(user_id="e2e-eve").count() == 2
    assert [m.subject for m in emails_to(provider, "eve@example.com")] == ["Your receipt for order E-1"]
    assert_no_key_accepted_twice(provider)


def test_a_changed_delay_applies_to_the_next_event_without_a_restart(deployment, write_key, campaigns, provider):
    with segment(deployment, write_key) as analytics:
        analytics.identify("e2e-fay", {"email": "fay@example.com"})
        analytics.track("e2e-fay", "cart_abandoned", {"value": 8})
    before = send_of(campaigns.recovery, "e2e-fay", deployment)
    assert before.due_at == occurred_at(before) + timedelta(minutes=60)

    # What saving the rule in Django Admin does, while both processes keep running.
    campaigns.recovery.delay = timedelta(minutes=30)
    campaigns.recovery.save()

    with segment(deployment, write_key) as analytics:
        analytics.identify("e2e-gus", {"email": "gus@example.com"})
        analytics.track("e2e-gus", "cart_abandoned", {"value": 9})
    after = send_of(campaigns.recovery, "e2e-gus", deployment)
    assert after.due_at == occurred_at(after) + timedelta(minutes=30)
    assert all(p.alive for p in deployment.processes), "a process restarted"
    assert emails_to(provider, "fay@example.com") == emails_to(provider, "gus@example.com") == []
    assert_no_key_accepted_twice(provider)


@pytest.mark.parametrize(
    "broker_env",
    # A queue name of its own, so that no other run's tasks share the Redis list.
    [{"Q_BROKER": "redis", "REDIS_URL": "redis://127.0.0.1:6379/0", "Q_CLUSTER_NAME": f"e2e-{uuid.uuid4().hex[:8]}"}],
    ids=["redis"],
)
def test_the_redis_broker_carries_immediate_and_delayed_sends(deployment, write_key, campaigns, provider):
    with segment(deployment, write_key) as analytics:
        analytics.identify("e2e-rita", {"email": "rita@example.com", "first_name": "Rita"})
        analytics.track("e2e-rita", "user_signup", {"plan": "free"})
        analytics.track("e2e-rita", "cart_abandoned", {"value": 12}, timestamp=ago(NEARLY_DUE))

    recovery = send_of(campaigns.recovery, "e2e-rita", deployment)
    wait_until(
        lambda: len(emails_to(provider, "rita@example.com")) == 2,
        what="the welcome and the cart recovery to rita@example.com through Redis",
        timeout=TIMEOUT,
        processes=deployment.processes,
    )
    subjects = sorted(email.subject for email in emails_to(provider, "rita@example.com"))
    assert subjects == ["Welcome, Rita! Your account is ready", "You left something in your cart, Rita"]
    # The provider's ledger has the email before the worker has read the answer and recorded it.
    assert send_of(campaigns.recovery, "e2e-rita", deployment, state=Send.State.SENT) == recovery
    assert_no_key_accepted_twice(provider)
