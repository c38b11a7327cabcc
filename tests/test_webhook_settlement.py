"""SendGrid's Event Webhook settles ambiguous sends: evidence of acceptance, applied once."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from campaigns.models import IdempotencyKey, ProviderEvent, Send
from campaigns.sending.provider import provider_send
from campaigns.sending.queueing import stale_sending_settle
from campaigns.sending.settlement import send_resend, unknown_sends_abandon
from harness.sendgrid_server import Accepted, Fault
from harness.sendgrid_webhook import sendgrid_events_for
from tests.conftest import identify, run_worker, track
from tests.steps import send_claim
from tests.world import rule_make


def accepted_like(*, to: str, key: str = "", send_id: int | None = None) -> Accepted:
    """A message SendGrid has that the local server never saw: forged, or sent by another system."""
    custom_args = {"triggermail_key": key, "triggermail_send": str(send_id)} if key else {"app": "billing"}
    payload = {"personalizations": [{"to": [{"email": to}]}], "custom_args": custom_args}
    return Accepted(message_id="elsewhere0123456789abc", received_at=0.0, payload=payload)


@pytest.fixture
def welcome(api, sendgrid):
    """A welcome email, due now: posted and matched, not yet delivered."""
    from tests.steps import events_process_pending

    rule_make("welcome", "user_signup")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    events_process_pending()
    return Send.objects.get()


@pytest.fixture
def unknown(welcome, sendgrid, settings):
    """SendGrid accepted the welcome email, then the connection dropped: we do not know that."""
    sendgrid.fail_next(Fault(kind="accept_then_drop"))
    run_worker()
    welcome.refresh_from_db()
    assert welcome.state == "unknown"
    return welcome


def test_an_unknown_send_becomes_sent_on_a_signed_event_carrying_its_key(unknown, sendgrid, webhook):
    accepted = sendgrid.accepted[0]

    response = webhook.post(sendgrid_events_for(accepted, "delivered"))

    assert response.status_code == 200
    unknown.refresh_from_db()
    assert unknown.state == "sent"
    assert unknown.reason.startswith("settled by webhook evidence: delivered at ")
    assert unknown.sent_at == unknown.sending_started_at
    assert unknown.provider_message_id == accepted.message_id
    for days in (1, 30):
        run_worker(at=timezone.now() + timedelta(days=days))
    assert list(sendgrid.keys().values()) == [1]
    assert sendgrid.requests == 1


def test_the_event_is_recorded_and_linked_to_its_send(unknown, sendgrid, webhook):
    [event] = sendgrid_events_for(sendgrid.accepted[0], "processed")

    webhook.post([event])

    recorded = ProviderEvent.objects.get()
    assert (recorded.event_id, recorded.event_type, recorded.send_id) == (event["sg_event_id"], "queued", unknown.pk)
    assert (recorded.key, recorded.recipient) == (unknown.dedupe_key, "u1@example.com")
    assert recorded.payload == event


def test_a_redelivered_event_is_recorded_and_applied_once(unknown, sendgrid, webhook):
    events = sendgrid_events_for(sendgrid.accepted[0], "delivered")
    webhook.post(events)
    unknown.refresh_from_db()
    settled = (unknown.state, unknown.reason, unknown.sent_at, unknown.updated_at)

    # SendGrid posts a batch again when our answer was lost; here in a batch with itself, too.
    for _ in range(2):
        assert webhook.post(events + events).status_code == 200

    unknown.refresh_from_db()
    assert (unknown.state, unknown.reason, unknown.sent_at, unknown.updated_at) == settled
    assert ProviderEvent.objects.count() == 1


def test_a_later_event_does_not_change_a_settled_send(unknown, sendgrid, webhook):
    accepted = sendgrid.accepted[0]
    webhook.post(sendgrid_events_for(accepted, "processed"))
    unknown.refresh_from_db()
    reason = unknown.reason

    webhook.post(sendgrid_events_for(accepted, "open"))

    unknown.refresh_from_db()
    assert (unknown.state, unknown.reason) == ("sent", reason)
    assert sorted(ProviderEvent.objects.values_list("event_type", flat=True)) == ["opened", "queued"]


@pytest.mark.parametrize(
    ("sendgrid_event", "normalized"),
    [
        ("processed", "queued"),
        ("deferred", "deferred"),
        ("delivered", "delivered"),
        ("bounce", "bounced"),
        ("dropped", "rejected"),
        ("open", "opened"),
        ("click", "clicked"),
        ("spamreport", "complained"),
        ("unsubscribe", "unsubscribed"),
    ],
)
def test_every_event_carrying_the_key_proves_acceptance(unknown, sendgrid, webhook, sendgrid_event, normalized):
    # Even a drop or a bounce: SendGrid can only drop or bounce a message it accepted from us.
    webhook.post(sendgrid_events_for(sendgrid.accepted[0], sendgrid_event))

    unknown.refresh_from_db()
    assert unknown.state == "sent"
    assert f"settled by webhook evidence: {normalized} at" in unknown.reason
    assert ProviderEvent.objects.get().event_type == normalized


def test_bounces_drops_and_spam_reports_are_recorded_with_their_reasons(unknown, sendgrid, webhook):
    accepted = sendgrid.accepted[0]

    webhook.post(
        sendgrid_events_for(accepted, "bounce")
        + sendgrid_events_for(accepted, "dropped", reason="Bounced Address", type="Bounced Address")
        + sendgrid_events_for(accepted, "spamreport")
    )

    recorded = {e.event_type: e for e in ProviderEvent.objects.all()}
    assert sorted(recorded) == ["bounced", "complained", "rejected"]
    assert recorded["bounced"].description == "550 5.1.1 user unknown"
    assert recorded["rejected"].reject_reason == "bounced"
    assert {e.send_id for e in recorded.values()} == {unknown.pk}


def test_a_send_stuck_in_sending_is_settled_by_evidence(welcome, sendgrid, webhook):
    # The worker died after SendGrid accepted the message and before it recorded the answer.
    sendgrid.fail_next(Fault(kind="accept_then_drop"))
    claim = send_claim(welcome.pk, now=timezone.now())
    assert claim is not None
    provider_send(claim.message)  # the answer is lost with the worker
    welcome.refresh_from_db()
    assert welcome.state == "sending"

    webhook.post(sendgrid_events_for(sendgrid.accepted[0], "delivered"))

    welcome.refresh_from_db()
    assert welcome.state == "sent"
    # The stale sweep later finds nothing to mark unknown.
    assert stale_sending_settle(now=timezone.now() + timedelta(hours=1)) == 0
    run_worker(at=timezone.now() + timedelta(days=1))
    assert list(sendgrid.keys().values()) == [1]


def test_an_abandoned_send_is_settled_by_late_evidence(unknown, sendgrid, webhook, settings):
    unknown_sends_abandon(now=timezone.now() + timedelta(seconds=settings.UNKNOWN_GRACE_SECONDS + 1))
    unknown.refresh_from_db()
    assert unknown.state == "abandoned"

    webhook.post(sendgrid_events_for(sendgrid.accepted[0], "delivered"))

    unknown.refresh_from_db()
    assert unknown.state == "sent"


def test_evidence_against_a_failed_send_is_flagged_not_applied(welcome, sendgrid, webhook):
    # SendGrid refused the call with a 400, so the send failed and its key was released. An event
    # carrying its key contradicts that: a person must see it, and the state must not flip.
    sendgrid.fail_next(Fault(kind="status", status=400))
    run_worker()
    welcome.refresh_from_db()
    assert welcome.state == "failed"
    fake_acceptance = accepted_like(to="u1@example.com", key=welcome.dedupe_key, send_id=welcome.pk)

    webhook.post(sendgrid_events_for(fake_acceptance, "delivered"))
    webhook.post(sendgrid_events_for(fake_acceptance, "open"))

    welcome.refresh_from_db()
    assert welcome.state == "failed"
    assert welcome.reason.startswith("contradicted by webhook evidence (delivered at ")
    assert welcome.reason.endswith("it was failed: not sent after 1 attempt(s): provider refused it")
    assert ProviderEvent.objects.filter(send=welcome).count() == 2
    assert not IdempotencyKey.objects.exists()


def test_an_event_without_our_key_is_matched_by_sendgrids_message_id(welcome, sendgrid, webhook):
    run_worker()
    welcome.refresh_from_db()
    assert welcome.state == "sent"
    [event] = sendgrid_events_for(sendgrid.accepted[0], "open")
    for name in ("triggermail_key", "triggermail_send", "anymail_id"):
        event.pop(name)

    webhook.post([event])

    assert ProviderEvent.objects.get().send_id == welcome.pk


def test_an_event_for_someone_elses_message_is_recorded_without_a_send(sendgrid, webhook, db):
    accepted = accepted_like(to="someone@example.com")

    response = webhook.post(sendgrid_events_for(accepted, "delivered"))

    assert response.status_code == 200
    assert ProviderEvent.objects.get().send_id is None


def test_a_resent_original_keeps_its_own_evidence_apart_from_the_resend(unknown, sendgrid, webhook, settings):
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        unknown_sends_abandon(now=timezone.now())
        resend = send_resend(unknown.pk, by="ann", now=timezone.now())
    assert resend is not None
    run_worker(at=timezone.now() + timedelta(hours=3, minutes=1))
    original_message, resent_message = sendgrid.accepted

    webhook.post(sendgrid_events_for(resent_message, "delivered"))

    resend.refresh_from_db()
    unknown.refresh_from_db()
    assert resend.state == "sent" and resend.provider_events.count() == 1
    assert unknown.state == "abandoned" and unknown.provider_events.count() == 0
    assert original_message.key != resent_message.key
