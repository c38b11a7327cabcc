"""Engagement conditions in Admin, the simulator and campaign files: a marketer picks the earlier
rule and the engagement, bad rows are named, and the simulator shows the condition at both moments."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.authoring.simulator import SimulatedEvent, simulation_run
from campaigns.authoring.transfer import RulesFileError, document_dumps, rules_export, rules_import
from campaigns.models import Condition, Rule, Template
from tests import baker_recipes
from tests.test_admin_rules import ADD_URL, errors_of, rule_form
from tests.world import rule_make, template_make


@pytest.fixture
def day_zero(db: None) -> Rule:
    return rule_make("Day 0", "user_signup", template=template_make("Welcome", subject="Welcome!"))


def engagement(key: str, operator: str = "not_opened") -> dict[str, str]:
    return {"source": "engagement", "key": key, "operator": operator, "value": ""}


def test_a_marketer_makes_day_two_depend_on_day_zero_not_being_opened(admin_client, day_zero):
    reminder = template_make("Reminder")
    response = admin_client.post(
        ADD_URL, rule_form(reminder, [engagement("Day 0")], name="Day 2", trigger_event="user_signup", delay="2 days")
    )

    assert response.status_code == 302
    [condition] = Rule.objects.get(name="Day 2").conditions.all()
    assert (condition.source, condition.key, condition.operator, condition.value) == (
        "engagement", "Day 0", "not_opened", None,
    )  # fmt: skip
    page = admin_client.get(f"/admin/campaigns/rule/{condition.rule_id}/change/").content.decode()
    assert "and the email of rule &#x27;Day 0&#x27; was not opened, send &#x27;Reminder&#x27; 2 days later" in page
    # The key offers every rule's name to pick from.
    assert '<option value="Day 0">' in page and 'list="id_conditions-0-key-rules"' in page


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (engagement("Day 7"), "Condition 1: there is no rule named &#x27;Day 7&#x27;."),
        (engagement("Day 2"), "Condition 1: a rule cannot depend on its own email; name an earlier rule."),
        ({"source": "property", "key": "plan", "operator": "opened"}, "reads an earlier rule&#x27;s email"),
        (engagement("Day 0", "gte"), "An engagement condition asks whether the earlier email was sent"),
    ],
)
def test_a_bad_engagement_row_is_named(admin_client, day_zero, row, message):
    response = admin_client.post(ADD_URL, rule_form(template_make("Reminder"), [row], name="Day 2"))

    assert message in errors_of(response)
    assert not Rule.objects.filter(name="Day 2").exists()


def test_renaming_the_earlier_rule_keeps_the_conditions_that_read_it(admin_client, day_zero):
    reminder = rule_make("Day 2", "user_signup")
    baker_recipes.engagement_condition.make(rule=reminder, key="Day 0")
    form = rule_form(day_zero.template, name="Welcome day 0", trigger_event="user_signup", delay="")

    assert admin_client.post(f"/admin/campaigns/rule/{day_zero.pk}/change/", form).status_code == 302

    assert list(reminder.conditions.values_list("key", flat=True)) == ["Welcome day 0"]


def test_the_simulator_shows_the_condition_at_matching_and_when_due(admin_client, day_zero):
    clicked = rule_make("Offer", "cart_abandoned")
    baker_recipes.engagement_condition.make(rule=clicked, key="Day 0", operator="clicked")
    opened = rule_make("Follow-up", "cart_abandoned")
    baker_recipes.engagement_condition.make(rule=opened, key="Day 0", operator="opened")
    contact = baker_recipes.contact.make(user_id="u1", email="u1@example.com")
    # The contact's day-0 email is still waiting (its send window opens later).
    baker_recipes.scheduled_send.make(rule=day_zero, contact=contact, due_at=timezone.now() + timedelta(hours=3))

    page = admin_client.get("/admin/campaigns/simulator/", {"name": "cart_abandoned", "user_id": "u1"}).content.decode()

    # Not sent yet, so not clicked or opened: judged when due, and as of now it would be cancelled.
    assert "checked again when due: the email of rule &#x27;Day 0&#x27; was clicked" in page
    assert "cancelled: condition not met when due: the email of rule &#x27;Day 0&#x27; was opened" in page
    simulation = simulation_run(SimulatedEvent("cart_abandoned", "u1", {}), traits=None, now=timezone.now())
    assert [o.decision.reason for o in simulation.outcomes] == ["scheduled", "scheduled"]
    assert [len(o.checks_now) for o in simulation.outcomes] == [1, 1]


def test_the_simulator_skips_at_matching_what_the_contact_already_did(admin_client, day_zero):
    nudge = rule_make("Nudge", "cart_abandoned")
    baker_recipes.engagement_condition.make(rule=nudge, key="Day 0", operator="not_opened")
    contact = baker_recipes.contact.make(user_id="u1", email="u1@example.com")
    now = timezone.now()
    baker_recipes.scheduled_send.make(rule=day_zero, contact=contact, state="sent", sent_at=now, opened_at=now)

    page = admin_client.get("/admin/campaigns/simulator/", {"name": "cart_abandoned", "user_id": "u1"}).content.decode()

    assert "Skipped: condition false" in page
    assert "condition not met: the email of rule &#x27;Day 0&#x27; was not opened" in page


def test_engagement_conditions_round_trip_through_a_campaign_file(day_zero):
    reminder = rule_make("Day 2", "user_signup", template=template_make("Reminder"), delay=timedelta(days=2))
    baker_recipes.engagement_condition.make(rule=reminder, key="Day 0", operator="not_clicked")
    text = document_dumps(rules_export())
    conditions = json.loads(text)["rules"]["Day 2"]["conditions"]
    assert conditions == [{"key": "Day 0", "operator": "not_clicked", "source": "engagement", "value": None}]

    Condition.objects.all().delete()
    Rule.objects.all().delete()
    Template.objects.all().delete()
    rules_import(json.loads(text))

    assert document_dumps(rules_export()) == text
    assert list(Rule.objects.get(name="Day 2").conditions.values_list("source", "key", "operator")) == [
        ("engagement", "Day 0", "not_clicked")
    ]


def test_a_file_whose_engagement_condition_names_no_rule_is_refused(db):
    document = {
        "format": 1,
        "templates": {"T": {"subject": "Hi", "text_body": "Hello"}},
        "rules": {
            "Day 2": {
                "trigger_event": "user_signup",
                "template": "T",
                "conditions": [{"source": "engagement", "key": "Day 0", "operator": "not_opened"}],
            }
        },
    }

    with pytest.raises(RulesFileError) as raised:
        rules_import(document)

    assert raised.value.errors == ["rule 'Day 2': conditions: Condition 1: there is no rule named 'Day 0'."]
    assert not Rule.objects.exists()
