"""The rule list: recent sends and the last change per rule, filters and search, at a fixed query cost."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Category, ChangeRecord, Rule, Send, Template
from events.models import Contact
from tests import baker_recipes

RULES = "/admin/campaigns/rule/"


@pytest.fixture
def recovery(db: None) -> Template:
    return baker_recipes.template.make(name="Recovery")


def sends_make(rule: Rule, count: int, *, age: timedelta = timedelta(0), state: str = Send.State.SENT) -> None:
    """`count` sends of the rule made `age` ago, and sent then if `state` is sent."""
    contact, _ = Contact.objects.get_or_create(user_id="u1", email="u1@example.com")
    at = timezone.now() - age
    for _ in range(count):
        send = baker_recipes.scheduled_send.make(
            rule=rule,
            contact=contact,
            triggered_at=at,
            due_at=at,
            state=state,
            sent_at=at if state == Send.State.SENT else None,
        )
        Send.objects.filter(pk=send.pk).update(created_at=at)


def column(page: str, name: str) -> list[str]:
    return re.findall(rf'<td class="field-{name}">([^<]*)</td>', page)


def names(page: str) -> list[str]:
    return re.findall(r'<th class="field-name"><a href="[^"]*">([^<]*)</a></th>', page)


def test_it_counts_each_rules_emails_sent_in_the_last_7_days_and_sorts_by_them(admin_client, recovery):
    quiet = baker_recipes.rule.make(name="quiet", template=recovery)
    busy = baker_recipes.rule.make(name="busy", template=recovery)
    sends_make(quiet, 1)
    sends_make(quiet, 5, age=timedelta(days=8))
    # Emails still waiting, or never sent, are not emails a contact got.
    sends_make(quiet, 2, state=Send.State.SCHEDULED)
    sends_make(quiet, 2, state=Send.State.CANCELLED)
    sends_make(busy, 3, age=timedelta(days=6))

    by_name = admin_client.get(RULES, {"o": "1"}).content.decode()
    by_sends = admin_client.get(RULES, {"o": "-8"}).content.decode()

    assert "Sent (7 days)" in by_name
    assert list(zip(names(by_name), column(by_name, "sends_recent"), strict=True)) == [("busy", "3"), ("quiet", "1")]
    assert names(by_sends) == ["busy", "quiet"]
    assert names(admin_client.get(RULES, {"o": "8"}).content.decode()) == ["quiet", "busy"]


def test_it_shows_when_and_by_whom_each_rule_last_changed(admin_client, recovery):
    changed = baker_recipes.rule.make(name="changed", template=recovery)
    baker_recipes.rule.make(name="untouched", template=recovery)

    admin_client.post(RULES, {"action": "rules_pause", "_selected_action": [changed.pk]})

    page = admin_client.get(RULES, {"o": "1"}).content.decode()
    last = dict(zip(names(page), column(page, "last_change"), strict=True))
    assert last["untouched"] == "—"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by admin", last["changed"])


def test_the_list_costs_the_same_queries_for_many_rules_as_for_few(admin_client, recovery):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(RULES).status_code == 200
        return len(captured)

    for name in ("a", "b"):
        sends_make(baker_recipes.rule.make(name=name, template=recovery), 2)
    few = queries()
    for name in ("c", "d", "e", "f", "g"):
        rule = baker_recipes.rule.make(name=name, template=recovery)
        sends_make(rule, 2)
        admin_client.post(RULES, {"action": "rules_pause", "_selected_action": [rule.pk]})

    assert queries() == few


def test_it_filters_by_event_active_and_category_and_searches_by_name(admin_client, recovery):
    receipt = baker_recipes.template.make(name="Receipt", category=Category.TRANSACTIONAL)
    baker_recipes.rule.make(name="cart recovery", trigger_event="cart_abandoned", template=recovery)
    baker_recipes.rule.make(name="paused nudge", trigger_event="cart_abandoned", template=recovery, active=False)
    baker_recipes.rule.make(name="order receipt", trigger_event="order_completed", template=receipt)

    def listed(**query: str) -> list[str]:
        return sorted(names(admin_client.get(RULES, query).content.decode()))

    assert listed(trigger_event="cart_abandoned") == ["cart recovery", "paused nudge"]
    assert listed(active__exact="0") == ["paused nudge"]
    assert listed(template__category="transactional") == ["order receipt"]
    assert listed(q="recovery") == ["cart recovery"]


def test_a_rule_deleted_from_the_list_is_recorded(admin_client, recovery):
    rule = baker_recipes.rule.make(name="gone", template=recovery)

    admin_client.post(RULES, {"action": "delete_selected", "_selected_action": [rule.pk], "post": "yes"})

    assert not Rule.objects.exists()
    assert list(ChangeRecord.objects.values_list("object_name", "action", "user")) == [
        ("gone", "deleted", "admin"),
        # It was made without a record: its history starts with the state it was deleted from.
        ("gone", "state before the first recorded change", ""),
    ]


def test_a_rule_without_cooldown_or_delay_reads_the_same_in_the_list_and_in_its_form(admin_client, recovery):
    rule = baker_recipes.rule.make(name="welcome", template=recovery)

    page = admin_client.get(RULES).content.decode()
    form = admin_client.get(f"{RULES}{rule.pk}/change/").content.decode()

    assert (column(page, "cooldown_words"), column(page, "delay_words")) == (["none"], ["at once"])
    assert re.search(r'<input type="text" name="cooldown" value="none"', form)
    assert re.search(r'<input type="text" name="delay" value="at once"', form)
    # The send window is the contact's local time: no "Now" button filling in the marketer's clock.
    assert "DateTimeShortcuts.js" not in form
