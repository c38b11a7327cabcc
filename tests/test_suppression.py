"""Suppression: what SendGrid reports about an address blocks every email to it, until a person lifts it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.utils import timezone

from campaigns.consent.suppression import soft_bounce_count, suppression_from_provider_event
from campaigns.models import Category, Decision, ProviderEvent, Send, Suppression
from events.models import Contact
from harness.sendgrid_webhook import sendgrid_events_for
from tests import baker_recipes
from tests.conftest import identify, run_worker, track
from tests.world import decisions, rule_make, template_make


@pytest.fixture
def shop(api, sendgrid):
    """A receipt (transactional) and an offer (marketing); one receipt already went to u1."""
    rule_make("receipt", "order_completed", template=template_make("Receipt", category=Category.TRANSACTIONAL))
    rule_make("offers", "promo_viewed", template=template_make("Offers", category=Category.MARKETING))
    api.batch([identify("u1", "U1@Example.com"), track("order_completed", "u1")])
    run_worker()
    assert len(sendgrid.accepted) == 1
    return api


def provider_event(event_type: str, recipient: str = "u1@example.com", **fields: Any) -> ProviderEvent:
    return baker_recipes.provider_event.make(
        event_type=event_type, recipient=recipient, occurred_at=timezone.now(), **fields
    )


@pytest.mark.parametrize(
    ("sendgrid_event", "reason"),
    [("bounce", "bounce"), ("dropped", "dropped"), ("spamreport", "complaint"), ("unsubscribe", "unsubscribe")],
)
def test_a_signed_webhook_event_suppresses_the_address(shop, sendgrid, webhook, sendgrid_event, reason):
    response = webhook.post(sendgrid_events_for(sendgrid.accepted[0], sendgrid_event))

    assert response.status_code == 200
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.reason, suppression.lifted_at) == ("u1@example.com", reason, None)
    assert suppression.provider_event == ProviderEvent.objects.get()


def test_a_suppressed_address_gets_nothing_not_even_a_receipt_and_the_trace_says_why(shop, sendgrid, webhook):
    webhook.post(sendgrid_events_for(sendgrid.accepted[0], "spamreport"))

    shop.batch([track("order_completed", "u1"), track("promo_viewed", "u1")])
    run_worker()

    assert decisions()[1:] == [("order_completed", "suppressed"), ("promo_viewed", "suppressed")]
    assert {d.detail for d in Decision.objects.filter(reason="suppressed")} == {
        "the address is suppressed (spam complaint)"
    }
    assert len(sendgrid.accepted) == 1


def test_a_redelivered_bounce_creates_no_second_suppression(shop, sendgrid, webhook):
    events = sendgrid_events_for(sendgrid.accepted[0], "bounce", sg_event_id="bounce-1")
    webhook.post(events)
    webhook.post(events)
    # A second, different hard bounce for the same address: still one active suppression.
    webhook.post(sendgrid_events_for(sendgrid.accepted[0], "bounce"))

    assert Suppression.objects.count() == 1
    assert ProviderEvent.objects.count() == 2


@pytest.mark.django_db
def test_the_same_event_applied_twice_suppresses_once():
    event = provider_event("bounced", recipient=" U1@example.com ")
    assert suppression_from_provider_event(event) is not None
    assert suppression_from_provider_event(event) is None
    assert list(Suppression.objects.values_list("email", flat=True)) == ["u1@example.com"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("event_type", "payload"), [("deferred", {}), ("bounced", {"type": "blocked"}), ("delivered", {}), ("opened", {})]
)
def test_soft_bounces_and_other_events_do_not_suppress(event_type, payload):
    assert suppression_from_provider_event(provider_event(event_type, payload=payload)) is None
    assert not Suppression.objects.exists()


def test_soft_bounces_are_counted_on_the_contact_page(shop, sendgrid, webhook, admin_client):
    webhook.post(sendgrid_events_for(sendgrid.accepted[0], "deferred"))
    webhook.post(sendgrid_events_for(sendgrid.accepted[0], "bounce", type="blocked", reason="421 try later"))

    assert soft_bounce_count("u1@example.com") == 2
    assert not Suppression.objects.exists()
    page = admin_client.get(f"/admin/events/contact/{Contact.objects.get().pk}/change/").content.decode()
    assert "No active suppression" in page and "Soft bounces (counted, not suppressed): 2." in page


def test_a_pending_send_is_suppressed_at_send_time(shop, sendgrid, webhook):
    from datetime import timedelta

    from campaigns.models import Rule
    from tests.conftest import later

    Rule.objects.filter(name="receipt").update(delay=timedelta(hours=1))
    shop.batch([track("order_completed", "u1")])
    run_worker()
    webhook.post(sendgrid_events_for(sendgrid.accepted[0], "bounce"))

    run_worker(at=later(hours=2))

    pending = Send.objects.order_by("id").last()
    assert pending is not None
    assert (pending.state, pending.reason) == ("suppressed", "the address is suppressed (hard bounce)")
    assert len(sendgrid.accepted) == 1


def test_lifting_in_the_admin_is_confirmed_recorded_and_logged(shop, sendgrid, webhook, admin_client):
    webhook.post(sendgrid_events_for(sendgrid.accepted[0], "bounce"))
    suppression = Suppression.objects.get()
    contact_page = admin_client.get(f"/admin/events/contact/{Contact.objects.get().pk}/change/").content.decode()
    assert "Every email to this address is blocked" in contact_page and "hard bounce" in contact_page

    form = {"action": "suppressions_lift_confirm", "_selected_action": [suppression.pk]}
    confirm = admin_client.post("/admin/campaigns/suppression/", form)
    assert confirm.status_code == 200 and b"Yes, lift 1 suppression" in confirm.content
    suppression.refresh_from_db()
    assert suppression.lifted_at is None

    admin_client.post("/admin/campaigns/suppression/", {**form, "post": "yes"})

    suppression.refresh_from_db()
    admin = User.objects.get(username="admin")
    assert suppression.lifted_at is not None and suppression.lifted_by == "admin"
    entry = LogEntry.objects.get(object_id=str(suppression.pk))
    assert (entry.user, entry.action_flag) == (admin, CHANGE)
    assert "Lifted the suppression (hard bounce)" in entry.get_change_message()
    # Email goes out again, and a new bounce can suppress the address again.
    shop.batch([track("order_completed", "u1")])
    run_worker()
    assert len(sendgrid.accepted) == 2
    webhook.post(sendgrid_events_for(sendgrid.accepted[1], "bounce"))
    assert Suppression.objects.filter(lifted_at__isnull=True).count() == 1


def test_the_suppression_list_searches_and_filters(shop, sendgrid, webhook, admin_client):
    webhook.post(sendgrid_events_for(sendgrid.accepted[0], "spamreport"))
    baker_recipes.suppression.make(email="old@example.com", reason="bounce", lifted_at=timezone.now(), lifted_by="bo")

    def listed(query: str) -> list[str]:
        response = admin_client.get(f"/admin/campaigns/suppression/?{query}")
        return sorted(s.email for s in response.context["cl"].result_list)

    assert listed("q=u1@") == ["u1@example.com"]
    assert listed("active=yes") == ["u1@example.com"]
    assert listed("active=no") == ["old@example.com"]
    assert listed("reason__exact=bounce") == ["old@example.com"]


def test_a_person_can_suppress_an_address_by_hand_once(db, admin_client):
    admin_client.post("/admin/campaigns/suppression/add/", {"email": "Ann@Example.com", "reason": "manual"})
    again = admin_client.post("/admin/campaigns/suppression/add/", {"email": "ann@example.com", "reason": "manual"})
    assert list(Suppression.objects.values_list("email", "reason")) == [("ann@example.com", "manual")]
    assert b"ann@example.com is already suppressed." in again.content
