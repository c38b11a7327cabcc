"""The history of rules and templates: who changed what and when, in readable words, and going back
to an earlier version from the admin."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from campaigns.authoring.demo import demo_setup
from campaigns.authoring.transfer import rules_export
from campaigns.models import ChangeRecord, Rule, Template
from tests import baker_recipes
from tests.conftest import identify, track
from tests.steps import events_process_pending
from tests.test_admin_rules import rule_form, template_form

RULES = "/admin/campaigns/rule/"


@pytest.fixture
def recovery(db: None) -> Template:
    return baker_recipes.template.make(name="Recovery")


def rule_change_form(rule: Rule, **fields: str) -> dict[str, Any]:
    """The rule's change form as the page shows it, with `fields` edited (conditions as in rule_form)."""
    conditions = list(rule.conditions.all())
    data = rule_form(rule.template, (), **{"name": rule.name, **fields})
    data["conditions-INITIAL_FORMS"] = str(len(conditions))
    data["conditions-TOTAL_FORMS"] = fields.get("conditions-TOTAL_FORMS", str(len(conditions)))
    for index, condition in enumerate(conditions):
        data.setdefault(f"conditions-{index}-id", str(condition.pk))
        data.setdefault(f"conditions-{index}-rule", str(rule.pk))
        for name in ("source", "key", "operator"):
            data.setdefault(f"conditions-{index}-{name}", getattr(condition, name))
        data.setdefault(f"conditions-{index}-value", json.dumps(condition.value))
    return data


def history_of(client: Client, obj: Rule | Template) -> str:
    response = client.get(f"/admin/campaigns/{obj._meta.model_name}/{obj.pk}/history/")
    assert response.status_code == 200
    return response.content.decode()


def added_rule(client: Client, template: Template, **fields: Any) -> Rule:
    response = client.post(RULES + "add/", rule_form(template, **fields))
    assert response.status_code == 302, response.content.decode()
    return Rule.objects.get(name="cart recovery")


def test_a_delay_change_shows_who_made_it_and_the_delay_before_and_after(maria, recovery):
    rule = added_rule(maria, recovery)

    response = maria.post(f"{RULES}{rule.pk}/change/", rule_change_form(rule, delay="30 minutes"))

    assert response.status_code == 302
    page = history_of(maria, rule)
    latest = ChangeRecord.objects.filter(object_id=rule.pk, kind="rule").first()
    assert latest is not None and (latest.action, latest.user) == ("changed", "maria")
    assert "delay: 1h → 30m" in page
    # Newest first: the change comes before the creation.
    assert page.index(f"record-{latest.pk}") < page.index("Created.")


def test_restoring_a_version_brings_back_the_old_delay_for_the_next_event(maria, recovery, api):
    rule = added_rule(maria, recovery)
    created = ChangeRecord.objects.get(object_id=rule.pk, action="created")
    maria.post(f"{RULES}{rule.pk}/change/", rule_change_form(rule, delay="30 minutes"))
    restore_url = f"{RULES}{rule.pk}/history/{created.version}/restore/"

    confirmation = maria.get(restore_url).content.decode()
    assert "delay: 30m → 1h" in confirmation
    assert Rule.objects.get(pk=rule.pk).delay == timedelta(minutes=30), "a GET changes nothing"
    response = maria.post(restore_url, follow=True)

    assert f"Restored version #{created.version}" in response.content.decode()
    assert Rule.objects.get(pk=rule.pk).delay == timedelta(hours=1)
    restored = ChangeRecord.objects.filter(object_id=rule.pk).first()
    assert restored is not None
    assert (restored.action, restored.user) == (f"restored version #{created.version}", "maria")
    assert "delay: 30m → 1h" in history_of(maria, rule)
    occurred_at = timezone.now()
    with time_machine.travel(occurred_at, tick=False):
        api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1")])
        events_process_pending()
    assert [send.due_at - occurred_at for send in rule.sends.all()] == [timedelta(hours=1)]


def test_a_template_body_change_is_shown_line_by_line(maria):
    maria.post("/admin/campaigns/template/add/", template_form(text_body="Hello\nCome back\nBye"))
    template = Template.objects.get(name="Recovery")

    maria.post(
        f"/admin/campaigns/template/{template.pk}/change/", template_form(text_body="Hello\nCome back soon\nBye")
    )

    page = history_of(maria, template)
    assert 'class="diff-removed">-Come back</span>' in page
    assert 'class="diff-added">+Come back soon</span>' in page
    assert '<span class="diff-context"> Hello</span>' in page


def test_a_condition_change_is_recorded_with_the_rule(maria, recovery):
    rule = added_rule(maria, recovery, conditions=[{"key": "cart_value", "operator": "gt", "value": "50"}])

    maria.post(f"{RULES}{rule.pk}/change/", rule_change_form(rule, **{"conditions-0-value": "75"}))
    added = rule_change_form(rule, **{"conditions-TOTAL_FORMS": "2", "conditions-1-key": "tier",
                                      "conditions-1-value": "gold", "conditions-1-operator": "eq",
                                      "conditions-1-source": "trait"})  # fmt: skip
    maria.post(f"{RULES}{rule.pk}/change/", added)

    page = history_of(maria, rule)
    assert "conditions[0].value: 50 → 75" in page
    assert "conditions[1].key: (none) → tier" in page
    assert "conditions[1].source: (none) → trait" in page


def test_saving_without_changes_adds_no_record(maria, recovery):
    rule = added_rule(maria, recovery)

    maria.post(f"{RULES}{rule.pk}/change/", rule_change_form(rule))

    assert list(ChangeRecord.objects.values_list("action", flat=True)) == ["created"]


def test_pausing_and_resuming_in_bulk_are_recorded_with_who(maria, recovery):
    rule = added_rule(maria, recovery)

    maria.post(RULES, {"action": "rules_pause", "_selected_action": [rule.pk]})
    maria.post(RULES, {"action": "rules_pause", "_selected_action": [rule.pk]})  # already paused: no record
    maria.post(RULES, {"action": "rules_resume", "_selected_action": [rule.pk]})

    assert list(ChangeRecord.objects.values_list("action", "user")) == [
        ("resumed", "maria"), ("paused", "maria"), ("created", "maria")
    ]  # fmt: skip
    assert "active: true → false" in history_of(maria, rule)


def test_deleting_a_rule_is_recorded_and_listed_under_change_records(maria, recovery):
    rule = added_rule(maria, recovery)

    maria.post(f"{RULES}{rule.pk}/delete/", {"post": "yes"})

    assert not Rule.objects.exists()
    deleted = ChangeRecord.objects.get(action="deleted")
    assert (deleted.object_name, deleted.user, deleted.after) == ("cart recovery", "maria", None)
    page = maria.get(f"/admin/campaigns/changerecord/{deleted.pk}/change/").content.decode()
    assert "Deleted." in page


def test_import_rules_records_each_change_as_imported_by_a_command(maria, recovery, tmp_path):
    rule = added_rule(maria, recovery)
    document = rules_export()
    document["rules"]["cart recovery"]["delay"] = "2h"
    file = tmp_path / "campaign.json"
    file.write_text(json.dumps(document), encoding="utf-8")

    call_command("import_rules", str(file))
    call_command("import_rules", str(file))  # nothing changes the second time, so nothing is recorded

    assert list(ChangeRecord.objects.values_list("action", "user")) == [("imported", ""), ("created", "maria")]
    page = history_of(maria, rule)
    assert "delay: 1h → 2h" in page
    assert '<td class="who">a command</td>' in page


def test_a_version_naming_a_deleted_template_is_not_restored(maria, recovery):
    rule = added_rule(maria, recovery)
    created = ChangeRecord.objects.get(action="created")
    other = baker_recipes.template.make(name="Other")
    maria.post(f"{RULES}{rule.pk}/change/", {**rule_change_form(rule), "template": str(other.pk)})
    recovery.delete()

    response = maria.post(f"{RULES}{rule.pk}/history/{created.version}/restore/", follow=True)

    assert "unknown template &#x27;Recovery&#x27;" in response.content.decode()
    assert Rule.objects.get(pk=rule.pk).template == other


def test_history_is_readable_with_view_permission_but_restoring_needs_change(maria, recovery):
    rule = added_rule(maria, recovery)
    maria.post(f"{RULES}{rule.pk}/change/", rule_change_form(rule, delay="30 minutes"))
    created = ChangeRecord.objects.get(action="created")
    viewer = User.objects.create_user("vic", is_staff=True)
    viewer.user_permissions.add(*Group.objects.get(name="Marketing").permissions.filter(codename="view_rule"))
    client = Client()
    client.force_login(viewer)
    restore_url = f"{RULES}{rule.pk}/history/{created.version}/restore/"

    page = history_of(client, rule)

    assert "delay: 1h → 30m" in page and "Restore this version" not in page
    assert client.get(restore_url).status_code == 403
    assert client.post(restore_url).status_code == 403
    assert Rule.objects.get(pk=rule.pk).delay == timedelta(minutes=30)
    assert "Restore this version" in history_of(maria, rule)
    assert maria.put(restore_url).status_code == 405


def test_restoring_a_version_brings_back_a_templates_old_name(maria):
    maria.post("/admin/campaigns/template/add/", template_form())
    template = Template.objects.get(name="Recovery")
    created = ChangeRecord.objects.get(action="created")
    maria.post(f"/admin/campaigns/template/{template.pk}/change/", template_form(name="Cart recovery", subject="Hi"))

    maria.post(f"/admin/campaigns/template/{template.pk}/history/{created.version}/restore/")

    template.refresh_from_db()
    assert (template.name, template.subject) == ("Recovery", "Your cart, {{ contact.first_name }}")
    assert "name: Cart recovery → Recovery" in history_of(maria, template)


def test_a_rule_pruned_by_import_rules_is_recorded_as_deleted_by_import(maria, recovery, tmp_path):
    added_rule(maria, recovery)
    file = tmp_path / "campaign.json"
    file.write_text(json.dumps({"format": 1, "templates": {}, "rules": {}}), encoding="utf-8")

    call_command("import_rules", str(file), "--prune")

    assert list(ChangeRecord.objects.values_list("kind", "object_name", "action", "user")) == [
        ("template", "Recovery", "deleted by import", ""),
        # The template was made without a record: its history starts with the state it was deleted from.
        ("template", "Recovery", "state before the first recorded change", ""),
        ("rule", "cart recovery", "deleted by import", ""),
        ("rule", "cart recovery", "created", "maria"),
    ]


def test_each_rule_numbers_its_own_versions_from_1(maria, recovery):
    first = added_rule(maria, recovery)
    maria.post(RULES + "add/", rule_form(recovery, name="other"))
    other = Rule.objects.get(name="other")
    for delay in ("30 minutes", "2 hours"):
        maria.post(f"{RULES}{other.pk}/change/", rule_change_form(other, delay=delay))
    maria.post(f"{RULES}{first.pk}/change/", rule_change_form(first, delay="45 minutes"))

    page = history_of(maria, first)

    versions = ChangeRecord.objects.filter(kind="rule", object_id=first.pk).order_by("id")
    assert [(r.version, r.action) for r in versions] == [(1, "created"), (2, "changed")]
    assert re.findall(r'<th scope="row">#(\d+)</th>', page) == ["2", "1"]


def test_the_demo_as_imported_is_version_1_and_can_be_restored_after_a_change(maria):
    demo_setup()
    rule = Rule.objects.get(trigger_event="cart_abandoned")
    imported = ChangeRecord.objects.get(kind="rule", object_id=rule.pk)
    assert (imported.version, imported.action) == (1, "imported")
    maria.post(f"{RULES}{rule.pk}/change/", rule_change_form(rule, delay="5 minutes"))

    response = maria.post(f"{RULES}{rule.pk}/history/1/restore/", follow=True)

    assert "Restored version #1; it applies to the next event. Recorded as version #3." in response.content.decode()
    assert Rule.objects.get(pk=rule.pk).delay == timedelta(hours=1)


def test_a_rule_made_before_its_history_was_kept_can_go_back_to_its_state_before_the_first_change(maria, recovery):
    rule = baker_recipes.rule.make(name="cart recovery", trigger_event="cart_abandoned", template=recovery)
    maria.post(f"{RULES}{rule.pk}/change/", rule_change_form(rule, delay="30 minutes"))

    page = history_of(maria, rule)
    response = maria.post(f"{RULES}{rule.pk}/history/1/restore/", follow=True)

    assert "As it was before the first recorded change" in page
    assert f'href="{RULES}{rule.pk}/history/1/restore/"' in page
    assert "Restored version #1" in response.content.decode()
    assert Rule.objects.get(pk=rule.pk).delay == timedelta(0)
