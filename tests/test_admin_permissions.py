"""Marketers run campaigns alone: the Marketing group opens what campaigns need and nothing that
would let them take over the system (write keys, users, groups)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.utils import timezone

from campaigns.admin.forbidden import permission_denied
from campaigns.models import ChangeRecord, Rule, Send, Suppression, Template
from events.models import Contact, Event
from tests import baker_recipes
from tests.conftest import staff_client
from tests.test_admin_rules import template_form


@pytest.fixture
def world(db: None) -> Rule:
    rule = baker_recipes.rule.make(name="cart recovery", trigger_event="cart_abandoned")
    contact = baker_recipes.contact.make(user_id="u1", email="u1@example.com")
    now = timezone.now()
    baker_recipes.track_event.make(name="cart_abandoned", user_id="u1", occurred_at=now, received_at=now)
    for state in (Send.State.SCHEDULED, Send.State.ABANDONED):
        baker_recipes.scheduled_send.make(
            rule=rule,
            contact=contact,
            triggered_at=now,
            dedupe_key=f"k-{state}",
            state=state,
            due_at=now + timedelta(hours=1),
        )
    return rule


def test_a_marketer_opens_and_changes_rules_and_templates_and_reads_events_and_contacts(maria, world):
    pages = ["/admin/campaigns/rule/", "/admin/campaigns/rule/add/", f"/admin/campaigns/rule/{world.pk}/change/",
             "/admin/campaigns/template/", "/admin/campaigns/send/", "/admin/campaigns/decision/",
             "/admin/campaigns/suppression/add/", "/admin/campaigns/changerecord/", "/admin/events/event/",
             f"/admin/events/event/{Event.objects.get().pk}/change/", "/admin/events/contact/",
             f"/admin/events/contact/{Contact.objects.get().pk}/change/", "/admin/campaigns/performance/",
             f"/admin/campaigns/rule/{world.pk}/history/"]  # fmt: skip
    assert {page: maria.get(page, follow=True).status_code for page in pages} == dict.fromkeys(pages, 200)

    template = world.template
    response = maria.post(f"/admin/campaigns/template/{template.pk}/change/", template_form(subject="Still there?"))

    assert response.status_code == 302
    assert Template.objects.get(pk=template.pk).subject == "Still there?"
    assert ChangeRecord.objects.get(action="changed").user == "maria"


def test_a_marketer_cannot_open_write_keys_users_or_groups(maria):
    forbidden = ["/admin/events/writekey/", "/admin/events/writekey/add/", "/admin/auth/user/",
                 "/admin/auth/user/add/", "/admin/auth/group/", "/admin/auth/group/add/"]  # fmt: skip

    assert {page: maria.get(page).status_code for page in forbidden} == dict.fromkeys(forbidden, 403)


def test_a_forbidden_admin_page_keeps_the_admin_layout_says_what_is_missing_and_leads_back(maria):
    response = maria.get("/admin/events/writekey/add/")

    page = response.content.decode()
    assert response.status_code == 403
    assert "<title>403 Forbidden | TriggerMail</title>" in page
    assert "it needs the permission to <strong>add write keys</strong>" in page
    assert "(maria, in Marketing)" in page
    assert '<a href="/admin/" class="button" id="forbidden-back">Back to the Admin home</a>' in page


def test_a_forbidden_page_outside_the_admin_keeps_djangos_plain_answer(db):
    response = permission_denied(RequestFactory().get("/u/x/"), PermissionDenied())

    assert response.status_code == 403
    assert b"403 Forbidden" in response.content and b"Back to the Admin home" not in response.content


def test_the_admin_index_shows_a_marketer_campaigns_but_not_write_keys_or_accounts(maria):
    page = maria.get("/admin/").content.decode()

    assert 'href="/admin/campaigns/rule/"' in page
    assert 'href="/admin/events/event/"' in page
    assert "/admin/events/writekey/" not in page
    assert "Write keys" not in page
    assert "/admin/auth/" not in page
    # The README's list of what marketers see leaves out the delivery's bookkeeping.
    assert "/admin/campaigns/idempotencykey/" not in page
    assert maria.get("/admin/campaigns/idempotencykey/").status_code == 403


def test_the_marketing_group_holds_no_permission_outside_campaigns_events_and_contacts(db):
    permissions = Group.objects.get(name="Marketing").permissions.select_related("content_type")
    models = {f"{p.content_type.app_label}.{p.content_type.model}" for p in permissions}

    assert "events.writekey" not in models
    assert not any(model.startswith(("auth.", "django_q.", "admin.", "sessions.")) for model in models)
    # change_event is what "Process again" asks for; the Event pages themselves stay read-only.
    assert {p.codename for p in permissions if p.content_type.model in ("event", "contact")} == {
        "view_event",
        "change_event",
        "view_contact",
    }


def test_a_marketer_cancels_a_scheduled_send(maria, world):
    scheduled = Send.objects.get(state=Send.State.SCHEDULED)

    maria.post("/admin/campaigns/send/", {"action": "sends_cancel", "_selected_action": [scheduled.pk]})

    assert Send.objects.get(pk=scheduled.pk).state == Send.State.CANCELLED


def test_staff_without_permissions_get_403_on_custom_pages(world):
    nobody = staff_client("nobody")
    pages = ["/admin/campaigns/performance/", f"/admin/campaigns/rule/{world.pk}/history/",
             f"/admin/campaigns/template/{world.template.pk}/history/"]  # fmt: skip

    assert {page: nobody.get(page).status_code for page in pages} == dict.fromkeys(pages, 403)


def test_a_reader_of_sends_can_neither_cancel_nor_resend(world):
    reader = staff_client("reader", "campaigns.view_send")
    ids = list(Send.objects.values_list("pk", flat=True))

    reader.post("/admin/campaigns/send/", {"action": "sends_cancel", "_selected_action": ids})
    reader.post("/admin/campaigns/send/", {"action": "sends_resend", "_selected_action": ids, "post": "yes"})

    assert sorted(Send.objects.values_list("state", flat=True)) == ["abandoned", "scheduled"]


def test_a_reader_of_rules_can_neither_pause_them_nor_restore_versions(world):
    reader = staff_client("reader", "campaigns.view_rule")

    reader.post("/admin/campaigns/rule/", {"action": "rules_pause", "_selected_action": [world.pk]})

    assert Rule.objects.get(pk=world.pk).active
    assert not ChangeRecord.objects.exists()


def test_a_reader_of_suppressions_cannot_lift_them(world):
    suppression = baker_recipes.suppression.make(email="u1@example.com")
    reader = staff_client("reader", "campaigns.view_suppression")

    reader.post("/admin/campaigns/suppression/", {"action": "suppressions_lift_confirm", "post": "yes",
                                                  "_selected_action": [suppression.pk]})  # fmt: skip

    assert Suppression.objects.get(pk=suppression.pk).lifted_at is None
