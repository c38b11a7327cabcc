"""After a poison event or send: the operator sees why, fixes the rule, processes again, and the
email goes out exactly once. Sends that raise while being prepared fail alone."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from campaigns.models import Condition, Decision, IdempotencyKey, Rule, Send
from events.models import Contact, Event
from tests import baker_recipes
from tests.conftest import identify, run_worker, track
from tests.steps import events_process_pending
from tests.world import rule_make, template_make

EVENTS = "/admin/events/event/"
ERROR = "ValueError: unknown condition operator &#x27;between&#x27;"


@pytest.fixture
def broken(db: None) -> Rule:
    """A receipt rule whose condition operator no form offers: it raises on an order with a total."""
    receipt = rule_make("receipt", "order_completed")
    baker_recipes.condition.make(rule=receipt, key="total", operator="between", value=50)
    rule_make("welcome", "user_signup")
    return receipt


@pytest.fixture
def failed_order(api, sendgrid, broken: Rule) -> Event:
    api.batch([identify("bad", "bad@example.com"), track("order_completed", "bad", total=80)])
    run_worker()
    event = Event.objects.get(name="order_completed")
    assert event.processing_error.startswith("ValueError")
    return event


def process_again(client: Client, event: Event) -> str:
    answer = client.post(EVENTS, {"action": "events_process_again", "_selected_action": [event.pk]}, follow=True)
    assert answer.status_code == 200
    return answer.content.decode()


def test_the_event_list_filters_failed_events_and_shows_their_error(admin_client, api, failed_order):
    api.batch([identify("new", "new@example.com"), track("user_signup", "new")])
    events_process_pending()
    api.batch([track("user_signup", "later")])

    failed = admin_client.get(EVENTS, {"processing": "failed"}).content.decode()
    pending = admin_client.get(EVENTS, {"processing": "pending"}).content.decode()
    done = admin_client.get(EVENTS, {"processing": "done"}).content.decode()

    assert "order_completed" in failed and ERROR in failed and "user_signup" not in failed
    assert "later" in pending and "order_completed" not in pending
    assert "new" in done and "order_completed" not in done


def test_the_event_page_shows_the_error_and_the_rules_error_decision(admin_client, failed_order):
    page = admin_client.get(f"{EVENTS}{failed_order.pk}/change/").content.decode()
    assert page.count(ERROR) >= 2  # the event's processing error, and the receipt rule's decision
    assert "processing error" in page


def test_processing_again_after_fixing_the_rule_sends_exactly_once(admin_client, sendgrid, broken, failed_order):
    Condition.objects.filter(rule=broken).update(operator="gte")

    message = process_again(admin_client, failed_order)
    # Twice, as an operator might: the second finds nothing failed to re-queue.
    second = process_again(admin_client, failed_order)
    run_worker()
    run_worker()
    again = process_again(admin_client, failed_order)
    run_worker()

    assert "Re-queued 1 failed event" in message
    assert "Re-queued 0 failed events" in second and "1 selected event(s) had not failed" in second
    assert "Re-queued 0 failed events" in again
    assert [m.to for m in sendgrid.accepted] == [["bad@example.com"]]
    failed_order.refresh_from_db()
    assert failed_order.processed_at is not None and failed_order.processing_error == ""
    assert list(Decision.objects.filter(event=failed_order).values_list("reason", flat=True)) == ["scheduled"]


def test_processing_again_before_the_fix_fails_the_event_again_with_the_same_reason(admin_client, failed_order):
    process_again(admin_client, failed_order)
    run_worker()
    failed_order.refresh_from_db()
    assert failed_order.processing_error.startswith("ValueError: unknown condition operator")
    assert Decision.objects.filter(event=failed_order, reason="error").count() == 1


def test_only_people_who_may_change_events_can_process_them_again(failed_order):
    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_event"))
    client = Client()
    client.force_login(viewer)
    page = client.get(EVENTS).content.decode()
    assert "events_process_again" not in page
    client.post(EVENTS, {"action": "events_process_again", "_selected_action": [failed_order.pk]})
    failed_order.refresh_from_db()
    assert failed_order.processing_error != ""


def test_a_marketer_who_fixed_the_rule_processes_the_event_again(sendgrid, broken, failed_order):
    marketer = User.objects.create_user("maria", is_staff=True)
    marketer.groups.add(Group.objects.get(name="Marketing"))
    client = Client()
    client.force_login(marketer)
    Condition.objects.filter(rule=broken).update(operator="gte")

    assert "Re-queued 1 failed event" in process_again(client, failed_order)
    run_worker()

    assert [m.to for m in sendgrid.accepted] == [["bad@example.com"]]
    # Still read-only: the event's page has no form to change it.
    assert client.post(f"{EVENTS}{failed_order.pk}/change/", {"name": "x"}).status_code == 403


def test_the_simulator_shows_the_error_for_the_rule_instead_of_failing(admin_client, failed_order):
    answer = admin_client.get("/admin/campaigns/simulator/", {"event": failed_order.pk})
    page = answer.content.decode()
    assert answer.status_code == 200
    assert "Skipped: processing error" in page and "matching raised ValueError" in page


def test_a_send_whose_contact_data_breaks_its_message_fails_alone(api, sendgrid):
    rule_make("welcome", "user_signup", template=template_make("Welcome", subject="Hi {{ contact.name }}"))
    api.batch([identify("odd", "odd@example.com"), identify("new", "new@example.com")])
    # Ingest stores traits as an object; a row written by an older version or by hand may not be one.
    Contact.objects.filter(user_id="odd").update(traits=["not", "an", "object"])
    api.batch([track("user_signup", "odd"), track("user_signup", "new")])
    run_worker()

    odd = Send.objects.get(contact__user_id="odd")
    assert odd.state == "failed" and odd.reason.startswith("error while preparing the email: TypeError")
    assert not IdempotencyKey.objects.filter(send=odd).exists()
    assert [m.to for m in sendgrid.accepted] == [["new@example.com"]]
    assert Send.objects.get(contact__user_id="new").state == "sent"


def test_a_template_that_raises_for_one_contacts_data_fails_that_send_only(api, sendgrid):
    template = template_make("Welcome", subject="Hi", text_body="{{ contact.plan|divisibleby:contact.step }}")
    rule_make("welcome", "user_signup", template=template)
    api.batch(
        [
            identify("odd", "odd@example.com", plan=10, step=0),
            identify("new", "new@example.com", plan=10, step=5),
            track("user_signup", "odd"),
            track("user_signup", "new"),
        ]
    )
    run_worker()
    odd = Send.objects.get(contact__user_id="odd")
    assert odd.state == "failed" and "ZeroDivisionError" in odd.reason
    assert [m.to for m in sendgrid.accepted] == [["new@example.com"]]
