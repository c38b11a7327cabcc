"""Sends in the admin: read-only records, found by user or key, cancellable only while scheduled."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from campaigns.models import IdempotencyKey, Send
from events.models import Contact
from tests import baker_recipes

LIST_URL = "/admin/campaigns/send/"


@pytest.fixture
def world(db: None) -> dict[str, object]:
    now = timezone.now()
    rule = baker_recipes.rule.make(name="cart recovery", trigger_event="cart_abandoned")
    ann = baker_recipes.contact.make(user_id="u-ann", email="ann@example.com")
    bob = baker_recipes.contact.make(user_id="u-bob", email="bob@example.com")
    event = baker_recipes.track_event.make(name="cart_abandoned", user_id="u-ann", occurred_at=now, received_at=now)

    def send(contact: Contact, state: str, key: str, **fields: Any) -> Send:
        return baker_recipes.scheduled_send.make(
            rule=rule, contact=contact, state=state, dedupe_key=key, triggered_at=now, due_at=now, **fields
        )

    return {
        "rule": rule,
        "event": event,
        "ann": ann,
        "scheduled": send(ann, Send.State.SCHEDULED, "k-scheduled", event=event),
        "sending": send(ann, Send.State.SENDING, "k-sending"),
        "sent": send(
            bob,
            Send.State.SENT,
            "k-sent",
            sent_at=now,
            to_email="bob@example.com",
            provider_message_id="sg-msg-42",
            last_error="read timeout on attempt 1",
            attempts=2,
        ),
    }


def states() -> dict[str, str]:
    return dict(Send.objects.values_list("dedupe_key", "state"))


def test_cancel_only_cancels_sends_still_scheduled(admin_client, world):
    selected = [world["scheduled"].pk, world["sending"].pk, world["sent"].pk]

    response = admin_client.post(
        LIST_URL, {"action": "sends_cancel", "_selected_action": selected, "index": "0"}, follow=True
    )

    page = response.content.decode()
    assert "Cancelled 1 scheduled send. 2 no longer scheduled and left as they were." in page
    assert states() == {"k-scheduled": "cancelled", "k-sending": "sending", "k-sent": "sent"}
    cancelled = Send.objects.get(dedupe_key="k-scheduled")
    assert cancelled.reason == "cancelled in the admin by admin"


def test_cancel_says_so_when_nothing_was_scheduled(admin_client, world):
    response = admin_client.post(
        LIST_URL, {"action": "sends_cancel", "_selected_action": [world["sent"].pk]}, follow=True
    )

    assert "Cancelled 0 scheduled sends. 1 no longer scheduled" in response.content.decode()
    assert states()["k-sent"] == "sent"


def test_sends_are_found_by_user_id_email_and_dedupe_key(admin_client, world):
    by_user = admin_client.get(LIST_URL, {"q": "u-bob"}).content.decode()
    by_email = admin_client.get(LIST_URL, {"q": "ann@example.com"}).content.decode()
    by_key = admin_client.get(LIST_URL, {"q": "k-sending"}).content.decode()

    assert f"/admin/campaigns/send/{world['sent'].pk}/change/" in by_user
    assert f"/admin/campaigns/send/{world['scheduled'].pk}/change/" not in by_user
    assert f"/admin/campaigns/send/{world['scheduled'].pk}/change/" in by_email
    assert f"/admin/campaigns/send/{world['sent'].pk}/change/" not in by_email
    assert f"/admin/campaigns/send/{world['sending'].pk}/change/" in by_key
    assert f"/admin/campaigns/send/{world['scheduled'].pk}/change/" not in by_key


def test_sends_are_filtered_by_state(admin_client, world):
    page = admin_client.get(LIST_URL, {"state__exact": "sent"}).content.decode()

    assert f"/admin/campaigns/send/{world['sent'].pk}/change/" in page
    assert f"/admin/campaigns/send/{world['scheduled'].pk}/change/" not in page


def test_the_send_page_shows_provider_evidence_read_only(admin_client, world):
    sent = world["sent"]
    baker_recipes.idempotency_key.make(key="k-sent", send=sent, expires_at=timezone.now() + timedelta(days=30))

    page = admin_client.get(f"/admin/campaigns/send/{sent.pk}/change/").content.decode()

    assert "sg-msg-42" in page
    assert "read timeout on attempt 1" in page
    assert "k-sent" in page
    assert 'name="_save"' not in page
    assert 'name="state"' not in page


def test_the_send_page_links_its_decision_and_trigger_event(admin_client, world):
    scheduled, event = world["scheduled"], world["event"]
    decision = baker_recipes.decision.make(
        event=event, rule=world["rule"], contact=world["ann"], outcome="scheduled", reason="scheduled",
        detail="due soon", send=scheduled,
    )  # fmt: skip

    page = admin_client.get(f"/admin/campaigns/send/{scheduled.pk}/change/").content.decode()

    assert f'href="/admin/campaigns/decision/{decision.pk}/change/">Scheduled: due soon</a>' in page
    assert f'href="/admin/events/event/{event.pk}/change/"' in page


def test_sends_cannot_be_added_or_edited_from_the_admin(admin_client, world):
    assert admin_client.get("/admin/campaigns/send/add/").status_code == 403
    admin_client.post(f"/admin/campaigns/send/{world['scheduled'].pk}/change/", {"state": "sent"})
    assert states()["k-scheduled"] == "scheduled"


def test_idempotency_keys_are_listed_read_only(admin_client, world):
    key = baker_recipes.idempotency_key.make(key="r:1:e:1", send=world["sent"])

    listing = admin_client.get("/admin/campaigns/idempotencykey/").content.decode()

    assert "r:1:e:1" in listing
    assert admin_client.get("/admin/campaigns/idempotencykey/add/").status_code == 403
    assert admin_client.post(f"/admin/campaigns/idempotencykey/{key.pk}/delete/", {"post": "yes"}).status_code == 403
    assert IdempotencyKey.objects.filter(pk=key.pk).exists()
