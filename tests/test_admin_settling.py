"""People settle what evidence could not: the count on the index, the filter, the resend action."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import OrmQ

from campaigns.models import IdempotencyKey, ProviderEvent, Send
from campaigns.sending.settlement import unknown_sends_abandon
from harness.sendgrid_server import Fault
from tests import baker_recipes
from tests.conftest import identify, run_worker, track
from tests.world import queued_tasks, queued_tasks_run, rule_make

LIST_URL = "/admin/campaigns/send/"


@pytest.fixture
def abandoned(api, sendgrid, settings):
    """A welcome email SendGrid may have accepted (a 503), past the grace window with no evidence."""
    rule_make("welcome", "user_signup")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    sendgrid.fail_next(Fault(kind="status", status=503))
    run_worker()
    unknown_sends_abandon(now=timezone.now() + timedelta(seconds=settings.UNKNOWN_GRACE_SECONDS + 1))
    send = Send.objects.get()
    assert send.state == "abandoned"
    OrmQ.objects.all().delete()  # the ingest's tasks, already done by run_worker
    return send


def resend(admin_client, send_ids, *, follow=False, **extra):
    data = {"action": "sends_resend", "_selected_action": send_ids, **extra}
    return admin_client.post(LIST_URL, data, follow=follow)


def test_the_index_counts_sends_needing_attention_with_one_query_and_links_to_them(admin_client, abandoned):
    baker_recipes.scheduled_send.make(rule=abandoned.rule, contact=abandoned.contact, state=Send.State.UNKNOWN)
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get("/admin/").content.decode()
    assert "2 sends need attention" in page
    assert f'href="{LIST_URL}?attention=yes"' in page
    # One count for the sends needing attention, one for the people who may have got an email twice.
    assert sum("COUNT(" in q["sql"].upper() and "campaigns_send" in q["sql"] for q in queries.captured_queries) == 2
    assert 'id="sends-twice"' not in page

    listed = admin_client.get(LIST_URL, {"attention": "yes"}).context["cl"].result_list
    assert sorted(s.state for s in listed) == ["abandoned", "unknown"]


def test_the_index_says_when_nothing_needs_attention(admin_client, db):
    assert "No sends need attention" in admin_client.get("/admin/").content.decode()


def test_resending_asks_first_saying_what_goes_to_whom_and_that_the_first_may_have_arrived(admin_client, abandoned):
    page = resend(admin_client, [abandoned.pk])

    assert page.status_code == 200
    text = page.content.decode()
    assert "The first email may have arrived" in text
    assert "u1@example.com" in text and "welcome template" in text
    assert Send.objects.count() == 1


def test_confirming_a_resend_creates_a_new_send_with_its_own_key_and_queues_it(admin_client, abandoned, sendgrid):
    response = resend(admin_client, [abandoned.pk], post="yes")

    assert response.status_code == 302
    original, new = Send.objects.order_by("id")
    assert (new.resend_of_id, new.state, new.dedupe_key) == (
        original.pk,
        "scheduled",
        f"{original.dedupe_key}#resend-1",
    )
    assert (new.rule_id, new.contact_id, new.event_id) == (original.rule_id, original.contact_id, original.event_id)
    assert original.state == "abandoned"
    assert original.reason.startswith("resent by admin at ") and original.reason.endswith(f"as send #{new.pk}")
    assert queued_tasks() == [("campaigns.tasks.sends_deliver", ([new.pk],))]

    queued_tasks_run()

    new.refresh_from_db()
    assert new.state == "sent"
    assert sorted(IdempotencyKey.objects.values_list("key", flat=True)) == sorted([original.dedupe_key, new.dedupe_key])
    assert sorted(sendgrid.keys().values()) == [1]  # the 503 attempt was not accepted; the resend was
    # The original no longer needs attention once a person resent it.
    assert "No sends need attention" in admin_client.get("/admin/").content.decode()


def test_a_send_is_resent_once_however_often_the_confirmation_is_posted(admin_client, abandoned):
    resend(admin_client, [abandoned.pk], post="yes")
    again = resend(admin_client, [abandoned.pk], post="yes")

    assert again.status_code == 302
    assert Send.objects.filter(resend_of=abandoned).count() == 1


def test_only_abandoned_sends_are_resent(admin_client, abandoned):
    Send.objects.filter(pk=abandoned.pk).update(state=Send.State.UNKNOWN)

    response = resend(admin_client, [abandoned.pk], post="yes", follow=True)

    assert "None of the selected sends is abandoned" in response.content.decode()
    assert Send.objects.count() == 1


def test_a_sends_page_lists_what_sendgrid_reported(admin_client, abandoned):
    baker_recipes.provider_event.make(
        event_type="deferred", send=abandoned, description="421 try again later", recipient="u1@x.com"
    )

    page = admin_client.get(f"{LIST_URL}{abandoned.pk}/change/").content.decode()

    assert "What SendGrid reported" in page
    assert "421 try again later" in page


def test_provider_events_are_read_only_in_the_admin(admin_client, db):
    event = baker_recipes.provider_event.make(event_type="bounced", recipient="u1@example.com")

    assert admin_client.get("/admin/campaigns/providerevent/").status_code == 200
    page = admin_client.get(f"/admin/campaigns/providerevent/{event.pk}/change/")
    assert page.status_code == 200 and "u1@example.com" in page.content.decode()
    assert admin_client.get("/admin/campaigns/providerevent/add/").status_code == 403
    assert admin_client.post(f"/admin/campaigns/providerevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ProviderEvent.objects.count() == 1
