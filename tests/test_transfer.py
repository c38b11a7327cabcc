"""Rules and templates exported to a JSON file and imported back: exact, idempotent, all or nothing."""

from __future__ import annotations

import copy
import json
from datetime import time, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from campaigns.models import Rule, Send, Template
from events.models import Contact
from tests import baker_recipes

pytestmark = pytest.mark.django_db


def export() -> str:
    out = StringIO()
    call_command("export_rules", stdout=out)
    return out.getvalue()


def import_file(tmp_path, document: dict[str, Any] | str, *args: str) -> str:
    path = tmp_path / "rules.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    out = StringIO()
    call_command("import_rules", str(path), *args, stdout=out)
    return out.getvalue()


def wipe() -> None:
    Rule.objects.all().delete()
    Template.objects.all().delete()


def conditions_of(name: str) -> list[tuple[str, str, str, Any]]:
    rule = Rule.objects.get(name=name)
    return [(c.source, c.key, c.operator, c.value) for c in rule.conditions.all()]


@pytest.fixture
def campaign() -> None:
    """Rules with every dedupe policy, odd durations, exit events and conditions of every JSON type."""
    receipt = baker_recipes.template.make(
        name="Receipt",
        subject="Order {{ event.order_id }}",
        text_body="Total: {{ event.total }}\nThanks — ½ off next time.\n",
        html_body="<p>Total: {{ event.total }}</p>\n",
        from_email="Shop <shop@example.com>",
        category="transactional",
    )
    # A SendGrid dynamic template: no subject or body of its own.
    promo = baker_recipes.template.make(
        name="Promo",
        subject="",
        text_body="",
        sendgrid_template_id="d-123abc",
        category="marketing",
        topic="Offers & news",
    )
    baker_recipes.template.make(name="Unused draft", subject="Draft", text_body="Not used yet.")
    baker_recipes.rule.make(
        name="receipt", trigger_event="order_completed", template=receipt, dedupe_policy="per_event"
    )
    recovery = baker_recipes.rule.make(
        name="cart recovery",
        trigger_event="cart_abandoned",
        template=promo,
        delay=timedelta(days=9, hours=1, minutes=2, seconds=3),
        cooldown=timedelta(hours=36),
        exit_events=["order_completed", "account_deleted"],
        dedupe_policy="per_user_day",
        cap_count=2,
        cap_period=timedelta(days=7),
        capped_action="delay",
        window_start=time(20),
        window_end=time(2, 30),
        window_days=[0, 4, 6],
        goal_event="order_completed",
        goal_window=timedelta(hours=36),
    )
    # Positions out of creation order: the file keeps the order people see, not the insert order.
    baker_recipes.condition.make(rule=recovery, position=1, source="trait", key="plan", operator="eq", value="gold")
    baker_recipes.condition.make(rule=recovery, position=0, key="cart.value", operator="gte", value=50)
    baker_recipes.condition.make(rule=recovery, position=2, key="tags", operator="contains", value="sale")
    baker_recipes.condition.make(rule=recovery, position=3, key="gift", operator="ne", value=True)
    baker_recipes.condition.make(rule=recovery, position=4, key="coupon", operator="not_exists", value=None)
    baker_recipes.rule.make(name="welcome", trigger_event="user_signup", template=promo, dedupe_policy="once_per_user")
    baker_recipes.rule.make(
        name="per sku",
        trigger_event="product_viewed",
        template=promo,
        delay=timedelta(minutes=90),
        active=False,
        dedupe_policy="per_property",
        dedupe_property="product.sku",
    )


def test_export_import_export_into_an_empty_database_gives_the_same_bytes(campaign, tmp_path):
    first = export()
    wipe()
    import_file(tmp_path, first)
    assert export() == first
    assert conditions_of("cart recovery") == [
        ("property", "cart.value", "gte", 50),
        ("trait", "plan", "eq", "gold"),
        ("property", "tags", "contains", "sale"),
        ("property", "gift", "ne", True),
        ("property", "coupon", "not_exists", None),
    ]


def test_the_file_is_readable_json_keyed_by_name_with_short_durations(campaign):
    text = export()
    document = json.loads(text)
    assert document["format"] == 1
    assert list(document["rules"]) == ["cart recovery", "per sku", "receipt", "welcome"]
    assert list(document["templates"]) == ["Promo", "Receipt", "Unused draft"]
    recovery = document["rules"]["cart recovery"]
    assert recovery["template"] == "Promo"
    assert (recovery["delay"], recovery["cooldown"]) == ("1w 2d 1h 2m 3s", "1d 12h")
    assert document["rules"]["receipt"]["delay"] == "0s"
    assert recovery["exit_events"] == ["order_completed", "account_deleted"]
    assert recovery["conditions"][0] == {"source": "property", "key": "cart.value", "operator": "gte", "value": 50}
    assert document["templates"]["Receipt"]["from_email"] == "Shop <shop@example.com>"
    assert (document["templates"]["Promo"]["topic"], document["templates"]["Receipt"]["topic"]) == ("Offers & news", "")
    # Indented, non-ASCII kept readable, one final newline: a diff shows the line that changed.
    assert '\n  "rules": {\n' in text
    assert "½ off" in text
    assert text.endswith("}\n")


def test_export_writes_to_a_file_with_output(campaign, tmp_path):
    out = StringIO()
    call_command("export_rules", "--output", str(tmp_path / "rules.json"), stdout=out)
    assert (tmp_path / "rules.json").read_text(encoding="utf-8") == export()
    assert out.getvalue() == f"Wrote 3 templates and 4 rules to {tmp_path / 'rules.json'}.\n"


def test_reimporting_the_same_file_changes_nothing(campaign, tmp_path):
    text = export()
    before = {rule.name: (rule.pk, rule.updated_at) for rule in Rule.objects.all()}
    output = import_file(tmp_path, text)
    assert output == "Nothing to change: 7 unchanged.\n"
    assert {rule.name: (rule.pk, rule.updated_at) for rule in Rule.objects.all()} == before
    assert export() == text


def test_it_updates_rules_and_templates_in_place_matching_by_name(campaign, tmp_path):
    document = json.loads(export())
    document["rules"]["receipt"].update(delay="90 minutes", template="Promo", exit_events=["refund_issued"])
    document["templates"]["Receipt"]["subject"] = "Your order {{ event.order_id }}"
    receipt_pk = Rule.objects.get(name="receipt").pk

    output = import_file(tmp_path, document)

    assert output.splitlines() == [
        "updated template 'Receipt' (subject)",
        "updated rule 'receipt' (template, delay, exit_events)",
        "5 unchanged.",
    ]
    rule = Rule.objects.get(name="receipt")
    assert (rule.pk, rule.delay, rule.template.name, rule.exit_events) == (
        receipt_pk,
        timedelta(minutes=90),
        "Promo",
        ["refund_issued"],
    )
    assert Template.objects.get(name="Receipt").subject == "Your order {{ event.order_id }}"
    assert json.loads(export())["rules"]["receipt"]["delay"] == "1h 30m"


def test_it_replaces_a_rules_conditions_with_the_files_list(campaign, tmp_path):
    document = json.loads(export())
    document["rules"]["cart recovery"]["conditions"] = [
        {"source": "trait", "key": "country", "operator": "eq", "value": "FR"},
        {"key": "cart.value", "operator": "gt", "value": 100},
    ]
    output = import_file(tmp_path, document)
    assert "updated rule 'cart recovery' (conditions)" in output
    assert conditions_of("cart recovery") == [
        ("trait", "country", "eq", "FR"),
        ("property", "cart.value", "gt", 100),
    ]


def test_a_number_and_a_boolean_are_different_condition_values(campaign, tmp_path):
    document = json.loads(export())
    document["rules"]["cart recovery"]["conditions"][3]["value"] = 1  # was true
    assert "updated rule 'cart recovery' (conditions)" in import_file(tmp_path, document)
    assert conditions_of("cart recovery")[3] == ("property", "gift", "ne", 1)


def test_it_creates_what_is_new_and_fills_left_out_fields_with_defaults(db, tmp_path):
    document = {
        "format": 1,
        "templates": {"Hello": {"subject": "Hi", "text_body": "Hello there."}},
        "rules": {"hello": {"trigger_event": "user_signup", "template": "Hello", "delay": "2 days"}},
    }
    output = import_file(tmp_path, document)
    assert output.splitlines() == ["created template 'Hello'", "created rule 'hello'", "0 unchanged."]
    rule = Rule.objects.get(name="hello")
    assert (rule.delay, rule.cooldown, rule.active, rule.exit_events, rule.dedupe_policy) == (
        timedelta(days=2),
        timedelta(0),
        True,
        [],
        "per_event",
    )
    assert (rule.template.category, rule.template.topic) == ("marketing", "")


INVALID_RULES = {
    "no such template": {"trigger_event": "a", "template": "Nope"},
    "bad delay": {"trigger_event": "a", "template": "Promo", "delay": "soon"},
    "bad operator": {
        "trigger_event": "a",
        "template": "Promo",
        "conditions": [{"key": "x", "operator": "eq", "value": 1}, {"key": "y", "operator": "equals", "value": 2}],
    },
    "bad policy": {"trigger_event": "a", "template": "Promo", "dedupe_policy": "once_a_week"},
    "per property": {"trigger_event": "a", "template": "Promo", "dedupe_policy": "per_property"},
    "typo": {"trigger_event": "a", "template": "Promo", "delya": "1h"},
    "no event": {"template": "Promo", "active": "yes"},
    "numeric compare": {
        "trigger_event": "a",
        "template": "Promo",
        "conditions": [{"key": "cart.value", "operator": "gt", "value": "lots"}],
    },
}


def test_an_invalid_file_is_refused_naming_each_rule_and_field_and_nothing_changes(campaign, tmp_path):
    before = export()
    document = json.loads(before)
    document["rules"]["receipt"]["delay"] = "2h"  # a valid change, which must not be written either
    document["rules"].update(copy.deepcopy(INVALID_RULES))

    with pytest.raises(CommandError) as raised:
        import_file(tmp_path, document)

    message = str(raised.value)
    assert "nothing was imported" in message
    for expected in [
        "rule 'no such template': template: unknown template 'Nope'",
        "rule 'bad delay': delay: cannot read 'soon' as a duration",
        "rule 'bad operator': conditions[1].operator: unknown operator 'equals'; use one of: eq, ne,",
        "rule 'bad policy': dedupe_policy: unknown dedupe policy 'once_a_week'",
        "rule 'per property': dedupe_property: is required with dedupe policy 'per_property'",
        "rule 'typo': delya: unknown field",
        "rule 'no event': trigger_event: is required",
        "rule 'no event': active: must be true or false, not a string",
        "rule 'numeric compare': conditions[0].value: ",
    ]:
        assert expected in message
    assert "is not a number" in message
    assert export() == before


def test_a_template_admin_would_refuse_is_refused(campaign, tmp_path):
    before = export()
    document = json.loads(before)
    document["templates"]["Receipt"]["text_body"] = "Total: {{ event.total|nosuchfilter }}"
    document["templates"]["Promo"]["sendgrid_template_id"] = "123"
    document["templates"]["Promo"]["category"] = "newsletter"

    with pytest.raises(CommandError) as raised:
        import_file(tmp_path, document)

    message = str(raised.value)
    assert "template 'Receipt': text_body: " in message
    assert "nosuchfilter" in message
    assert "template 'Promo': category: unknown category 'newsletter'" in message
    assert export() == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"format": 1, "rules": {', "not valid JSON: Expecting property name enclosed in double quotes at line 1"),
        ('{"format": 1, "rules": {"a": {}, "a": {}}}', "'a' appears twice in the same object"),
        ('{"format": 2, "rules": {}}', "format: must be 1, not 2"),
        ("[]", "the file must hold a JSON object, not an array"),
        (
            '{"format": 1, "templates": {"T": {"subject": 1.5}}}',
            "subject: must be a string, not a number with a fraction",
        ),
        ('{"format": 1, "rulez": {}}', "rulez: unknown section"),
    ],
)
def test_a_file_that_is_not_a_rules_document_is_refused(db, tmp_path, text, expected):
    with pytest.raises(CommandError) as raised:
        import_file(tmp_path, text)
    assert expected in str(raised.value)


def test_an_unreadable_file_is_reported(db, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_rules", str(tmp_path / "missing.json"), stdout=StringIO())


def test_dry_run_says_what_would_change_and_writes_nothing(campaign, tmp_path):
    before = export()
    document = json.loads(before)
    document["rules"]["receipt"]["active"] = False
    document["rules"]["brand new"] = {"trigger_event": "x", "template": "Promo"}
    del document["rules"]["welcome"]

    output = import_file(tmp_path, document, "--dry-run", "--prune")

    assert output.splitlines() == [
        "would create rule 'brand new'",
        "would update rule 'receipt' (active)",
        "would delete rule 'welcome'",
        "5 unchanged.",
        "Dry run: nothing was written.",
    ]
    assert export() == before


def make_send(rule_name: str) -> None:
    contact = Contact.objects.get_or_create(user_id="u1", defaults={"email": "u1@example.com"})[0]
    now = timezone.now()
    baker_recipes.scheduled_send.make(
        rule=Rule.objects.get(name=rule_name), contact=contact, triggered_at=now, due_at=now, state=Send.State.SENT
    )


def test_prune_deletes_rules_missing_from_the_file_and_deactivates_those_with_sends(campaign, tmp_path):
    make_send("welcome")
    document = json.loads(export())
    del document["rules"]["welcome"]
    del document["rules"]["receipt"]
    del document["templates"]["Receipt"]
    del document["templates"]["Unused draft"]

    output = import_file(tmp_path, document, "--prune")

    assert output.splitlines() == [
        "deleted rule 'receipt'",
        "deactivated rule 'welcome' (instead of deleting: it has 1 send, which keep their rule, so it cannot "
        "be deleted)",
        "deleted template 'Receipt'",
        "deleted template 'Unused draft'",
        "3 unchanged.",
    ]
    assert sorted(Rule.objects.values_list("name", "active")) == [
        ("cart recovery", True),
        ("per sku", False),
        ("welcome", False),
    ]
    # The deactivated rule still uses its template, so the template stays.
    assert sorted(Template.objects.values_list("name", flat=True)) == ["Promo"]
    assert Send.objects.filter(rule__name="welcome").count() == 1


def test_pruning_again_keeps_the_inactive_rule_with_sends_and_says_why(campaign, tmp_path):
    make_send("welcome")
    document = json.loads(export())
    del document["rules"]["welcome"]
    import_file(tmp_path, document, "--prune")

    output = import_file(tmp_path, document, "--prune")

    assert output.splitlines() == [
        "kept rule 'welcome' (already inactive; it has 1 send, which keep their rule, so it cannot be deleted)",
        "6 unchanged.",
    ]


def test_without_prune_rules_missing_from_the_file_are_left_alone(campaign, tmp_path):
    document = json.loads(export())
    del document["rules"]["welcome"]
    assert import_file(tmp_path, document) == "Nothing to change: 6 unchanged.\n"
    assert Rule.objects.get(name="welcome").active


def test_a_rule_may_use_a_template_that_is_already_in_the_database(campaign, tmp_path):
    document = {"format": 1, "rules": {"second welcome": {"trigger_event": "user_signup", "template": "Receipt"}}}
    assert import_file(tmp_path, document).splitlines() == ["created rule 'second welcome'", "0 unchanged."]
    assert Rule.objects.get(name="second welcome").template.name == "Receipt"


def test_timing_fields_are_written_short_and_read_back_exactly(campaign, tmp_path):
    document = json.loads(export())
    recovery = document["rules"]["cart recovery"]
    assert {key: recovery[key] for key in ("cap_count", "cap_period", "capped_action", "window_start", "window_end",
                                          "window_days", "goal_event", "goal_window")} == {
        "cap_count": 2, "cap_period": "1w", "capped_action": "delay", "window_start": "20:00",
        "window_end": "02:30", "window_days": ["mon", "fri", "sun"], "goal_event": "order_completed",
        "goal_window": "1d 12h",
    }  # fmt: skip
    receipt = document["rules"]["receipt"]
    assert (receipt["cap_count"], receipt["window_start"], receipt["window_days"], receipt["goal_event"]) == (
        None, None, [], ""
    )  # fmt: skip

    recovery.update(window_start="08:00", window_end="20:00:30", window_days=["sat", "tue"], cap_count=None)
    output = import_file(tmp_path, document)
    assert "updated rule 'cart recovery' (cap_count, window_start, window_end, window_days)" in output
    rule = Rule.objects.get(name="cart recovery")
    assert (rule.cap_count, rule.window_start, rule.window_end, rule.window_days) == (
        None, time(8), time(20, 0, 30), [1, 5]
    )  # fmt: skip
    assert json.loads(export())["rules"]["cart recovery"]["window_end"] == "20:00:30"


def test_bad_timing_fields_are_refused_naming_the_field(campaign, tmp_path):
    document = json.loads(export())
    document["rules"]["receipt"].update(window_start="8am", window_days=["monday"], cap_count=0)
    document["rules"]["welcome"].update(window_start="08:00", goal_event="purchase", goal_window="0s")
    with pytest.raises(CommandError):
        import_file(tmp_path, document)
    errors = import_errors(tmp_path, document)
    assert (
        "rule 'receipt': window_start: must be a local time \"HH:MM\" such as \"08:00\", or null, not '8am'" in errors
    )
    assert (
        "rule 'receipt': window_days: must be a list of weekdays from mon, tue, wed, thu, fri, sat, sun "
        "(empty: every day)" in errors
    )
    assert "rule 'receipt': cap_count: must be a whole number of emails from 1 up, or null for no cap, not 0" in errors
    assert (
        "rule 'welcome': window_end: Give both the opening and the closing time (00:00 to 00:00 for the whole day)."
        in errors
    )
    assert "rule 'welcome': goal_window: Give how long after the email the goal event counts, e.g. 3 days." in errors


def import_errors(tmp_path, document: dict[str, Any]) -> list[str]:
    from campaigns.authoring.transfer_validation import RulesFileError, document_validate

    with pytest.raises(RulesFileError) as caught:
        document_validate(document)
    return caught.value.errors
