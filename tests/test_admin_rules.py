"""Rules and templates as marketers edit them: words for durations, typed condition values,
errors on the field (or the row) that caused them, and a plain-language summary."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from django.utils.html import escape

from campaigns.authoring.form_fields import condition_value_format, condition_value_parse
from campaigns.authoring.summary import rule_summary
from campaigns.matching.conditions import ConditionData
from campaigns.matching.rules import RuleData
from campaigns.models import Rule, Template
from tests import baker_recipes

ADD_URL = "/admin/campaigns/rule/add/"


@pytest.fixture
def recovery(db: None) -> Template:
    return baker_recipes.template.make(name="Recovery")


def rule_form(template: Template, conditions: Sequence[dict[str, str]] = (), **fields: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "cart recovery",
        "active": "on",
        "trigger_event": "cart_abandoned",
        "template": str(template.pk),
        "delay": "1 hour",
        "cooldown": "",
        "exit_events": "",
        "dedupe_policy": "per_event",
        "dedupe_property": "",
        "conditions-TOTAL_FORMS": str(len(conditions)),
        "conditions-INITIAL_FORMS": "0",
        "conditions-MIN_NUM_FORMS": "0",
        "conditions-MAX_NUM_FORMS": "1000",
        # The A/B variants inline, empty: the rule sends its own template.
        "variants-TOTAL_FORMS": "0",
        "variants-INITIAL_FORMS": "0",
        **fields,
    }
    for index, condition in enumerate(conditions):
        for name, value in {"source": "property", "operator": "eq", "value": "", **condition}.items():
            data[f"conditions-{index}-{name}"] = value
    return data


def errors_of(response: Any) -> str:
    assert response.status_code == 200, "the form was accepted"
    return response.content.decode()


# --- Durations, exit events, dedupe ----------------------------------------------------------


def test_it_reads_the_delay_and_cooldown_as_people_say_them(admin_client, recovery):
    admin_client.post(ADD_URL, rule_form(recovery, delay="30 minutes", cooldown="1h 30m"))

    rule = Rule.objects.get(name="cart recovery")
    assert rule.delay == timedelta(minutes=30)
    assert rule.cooldown == timedelta(hours=1, minutes=30)
    page = admin_client.get(f"/admin/campaigns/rule/{rule.pk}/change/").content.decode()
    assert 'name="delay" value="30m"' in page
    assert 'name="cooldown" value="1h 30m"' in page


def test_an_empty_delay_means_at_once(admin_client, recovery):
    admin_client.post(ADD_URL, rule_form(recovery, delay=""))

    assert Rule.objects.get(name="cart recovery").delay == timedelta(0)


def test_it_rejects_a_delay_it_cannot_read(admin_client, recovery):
    response = admin_client.post(ADD_URL, rule_form(recovery, delay="soon"))

    assert escape("Cannot read 'soon' as a duration; write e.g. '30 minutes'") in errors_of(response)
    assert not Rule.objects.exists()


def test_exit_events_are_stored_as_a_trimmed_list_without_blanks(admin_client, recovery):
    admin_client.post(ADD_URL, rule_form(recovery, exit_events=" order_completed, ,account_deleted,order_completed, "))

    rule = Rule.objects.get(name="cart recovery")
    assert rule.exit_events == ["order_completed", "account_deleted"]
    page = admin_client.get(f"/admin/campaigns/rule/{rule.pk}/change/").content.decode()
    assert 'value="order_completed, account_deleted"' in page


def test_once_per_property_value_needs_the_property(admin_client, recovery):
    response = admin_client.post(ADD_URL, rule_form(recovery, dedupe_policy="per_property", dedupe_property=" "))

    assert "Name the event property (e.g. order_id)" in errors_of(response)
    assert not Rule.objects.exists()


def test_once_per_property_value_is_saved_with_its_property(admin_client, recovery):
    admin_client.post(ADD_URL, rule_form(recovery, dedupe_policy="per_property", dedupe_property="order_id"))

    assert Rule.objects.get(name="cart recovery").dedupe_property == "order_id"


# --- Conditions -------------------------------------------------------------------------------


def test_condition_values_are_typed_like_json(admin_client, recovery):
    conditions = [
        {"key": "cart_value", "operator": "gt", "value": "50"},
        {"key": "tier", "value": "gold"},
        {"key": "coupon", "value": '"50"'},
        {"key": "vip", "source": "trait", "value": "true"},
        {"key": "email", "operator": "exists", "value": "ignored"},
    ]

    admin_client.post(ADD_URL, rule_form(recovery, conditions))

    rule = Rule.objects.get(name="cart recovery")
    stored = [(c.source, c.key, c.operator, c.value) for c in rule.conditions.all()]
    assert stored == [
        ("property", "cart_value", "gt", 50),
        ("property", "tier", "eq", "gold"),
        ("property", "coupon", "eq", "50"),
        ("trait", "vip", "eq", True),
        ("property", "email", "exists", None),
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [("50", 50), ("2.5", 2.5), ("gold", "gold"), ('"gold"', "gold"), ('"50"', "50"), ("true", True), ("", None)],
)
def test_a_condition_value_reads_back_as_it_is_shown(text, value):
    assert condition_value_parse(text) == value
    assert condition_value_parse(condition_value_format(value)) == value


def test_a_bad_condition_row_is_named(admin_client, recovery):
    conditions = [
        {"key": "cart_value", "operator": "gt", "value": "50"},
        {"key": "tier", "operator": "gt", "value": "gold"},
    ]

    response = admin_client.post(ADD_URL, rule_form(recovery, conditions))

    page = errors_of(response)
    assert escape('Condition 2 (tier): “is greater than” compares numbers, and "gold" is not a number.') in page
    # The value is shown back exactly as it was typed.
    assert 'name="conditions-1-value" value="gold"' in page
    assert not Rule.objects.exists()


def test_a_condition_without_a_value_is_rejected(admin_client, recovery):
    response = admin_client.post(ADD_URL, rule_form(recovery, [{"key": "tier", "operator": "eq", "value": " "}]))

    assert escape("Condition 1 (tier): “equals” needs a value to compare with.") in errors_of(response)


def test_broken_json_in_a_condition_value_is_rejected(admin_client, recovery):
    response = admin_client.post(
        ADD_URL, rule_form(recovery, [{"key": "tags", "operator": "contains", "value": "[1,"}])
    )

    assert "Condition 1 (tags): [1, is not valid JSON" in errors_of(response)


def test_conditions_keep_the_order_they_were_written_in(admin_client, recovery):
    keys = ["z_last_alphabetically", "a_first", "m_middle"]
    admin_client.post(ADD_URL, rule_form(recovery, [{"key": key, "operator": "exists"} for key in keys]))

    rule = Rule.objects.get(name="cart recovery")
    assert [c.key for c in rule.conditions.all()] == keys


# --- Summary ----------------------------------------------------------------------------------


def recovery_rule(**fields: Any) -> RuleData:
    values: dict[str, Any] = {
        "id": 1,
        "name": "cart recovery",
        "trigger_event": "cart_abandoned",
        "template_name": "Recovery",
        "delay": timedelta(hours=1),
        "conditions": (ConditionData("property", "cart_value", "gt", 50),),
        "exit_events": ("order_completed",),
        "dedupe_policy": "per_user_day",
        **fields,
    }
    return RuleData(**values)


def test_the_summary_tells_the_rule_in_one_sentence():
    assert rule_summary(recovery_rule()) == (
        "When cart_abandoned happens and property cart_value > 50, send 'Recovery' 1 hour later, "
        "unless order_completed happens first; at most once per user per day."
    )


def test_the_summary_of_a_simple_paused_rule_with_a_cooldown():
    rule = recovery_rule(
        active=False,
        delay=timedelta(0),
        conditions=(),
        exit_events=(),
        dedupe_policy="per_event",
        cooldown=timedelta(days=2),
    )

    assert rule_summary(rule) == (
        "Paused. When cart_abandoned happens, send 'Recovery' right away; at most once per event, "
        "and no more than one email from this rule per user within 2 days."
    )


def test_the_summary_names_the_dedupe_property_and_every_exit_event():
    rule = recovery_rule(
        conditions=(ConditionData("trait", "plan", "eq", "gold"), ConditionData("property", "coupon", "not_exists")),
        exit_events=("order_completed", "account_deleted"),
        dedupe_policy="per_property",
        dedupe_property="cart_id",
    )

    assert rule_summary(rule) == (
        "When cart_abandoned happens and trait plan equals 'gold' and property coupon does not exist, "
        "send 'Recovery' 1 hour later, unless order_completed or account_deleted happens first; "
        "at most once per user for each value of property cart_id."
    )


def test_the_rule_page_shows_the_summary(admin_client, recovery):
    rule = baker_recipes.rule.make(
        name="cart recovery",
        trigger_event="cart_abandoned",
        template=recovery,
        delay=timedelta(hours=1),
        exit_events=["order_completed"],
        dedupe_policy="per_user_day",
    )
    baker_recipes.condition.make(rule=rule, key="cart_value", operator="gt", value=50)

    page = admin_client.get(f"/admin/campaigns/rule/{rule.pk}/change/").content.decode()

    assert escape(rule_summary(recovery_rule(id=rule.pk))) in page
    assert "No cart_abandoned event received in the last 7 days" in page


# --- The rule list ----------------------------------------------------------------------------


def test_the_rule_list_shows_delays_in_words_and_filters_by_trigger(admin_client, recovery):
    baker_recipes.rule.make(
        name="recover", trigger_event="cart_abandoned", template=recovery, delay=timedelta(minutes=90)
    )
    baker_recipes.rule.make(name="welcome", trigger_event="user_signup", template=recovery, cooldown=timedelta(days=1))

    page = admin_client.get("/admin/campaigns/rule/").content.decode()
    filtered = admin_client.get("/admin/campaigns/rule/", {"trigger_event": "user_signup"}).content.decode()
    searched = admin_client.get("/admin/campaigns/rule/", {"q": "cart_aband"}).content.decode()

    assert "1 hour 30 minutes" in page
    assert "1 day" in page
    assert "welcome" in filtered and "recover" not in filtered
    assert "recover" in searched and "welcome" not in searched


def test_rules_are_paused_and_resumed_in_bulk(admin_client, recovery):
    first = baker_recipes.rule.make(name="first", template=recovery)
    second = baker_recipes.rule.make(name="second", template=recovery)
    ids = [first.pk, second.pk]

    paused = admin_client.post(
        "/admin/campaigns/rule/", {"action": "rules_pause", "_selected_action": ids}, follow=True
    )
    assert "Paused 2 rules." in paused.content.decode()
    assert not Rule.objects.filter(active=True).exists()

    admin_client.post("/admin/campaigns/rule/", {"action": "rules_resume", "_selected_action": [first.pk]})
    assert list(Rule.objects.filter(active=True).values_list("name", flat=True)) == ["first"]


# --- Templates --------------------------------------------------------------------------------


def template_form(**fields: str) -> dict[str, str]:
    return {
        "name": "Recovery",
        "category": "marketing",
        "from_email": "",
        "subject": "Your cart, {{ contact.first_name }}",
        "text_body": "Come back",
        "html_body": "",
        "sendgrid_template_id": "",
        # The translations inline (campaigns.admin.email_templates), empty.
        "translations-TOTAL_FORMS": "0",
        "translations-INITIAL_FORMS": "0",
        **fields,
    }


def test_a_template_with_valid_syntax_is_saved(admin_client):
    admin_client.post("/admin/campaigns/template/add/", template_form(from_email="Shop <shop@example.com>"))

    assert Template.objects.get(name="Recovery").from_email == "Shop <shop@example.com>"


def test_a_template_syntax_error_is_shown_on_its_field_with_the_line(admin_client):
    body = "Hello\n{% if contact.vip %}\nVIP!\n{% endfor %}\n"

    response = admin_client.post("/admin/campaigns/template/add/", template_form(html_body=body))

    page = errors_of(response)
    assert "Line 4: Invalid block tag on line 4: &#x27;endfor&#x27;, expected &#x27;elif&#x27;" in page
    assert not Template.objects.exists()


def test_a_template_needs_a_subject_and_a_body_or_a_sendgrid_id(admin_client):
    response = admin_client.post("/admin/campaigns/template/add/", template_form(subject="", text_body=""))

    page = errors_of(response)
    assert "Give a subject (or a SendGrid template id instead)." in page
    assert "Give a text or an HTML body (or a SendGrid template id instead)." in page


def test_a_sendgrid_dynamic_template_needs_no_subject(admin_client):
    admin_client.post(
        "/admin/campaigns/template/add/", template_form(subject="", text_body="", sendgrid_template_id="d-123abc")
    )

    assert Template.objects.get(name="Recovery").sendgrid_template_id == "d-123abc"


def test_a_bad_from_address_is_rejected(admin_client):
    response = admin_client.post("/admin/campaigns/template/add/", template_form(from_email="shop at example"))

    assert "is not an address" in errors_of(response)
