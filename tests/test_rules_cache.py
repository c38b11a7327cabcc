"""The processor reads the rules again exactly when a rule, condition, template or the settings changed."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.matching.rules import RuleData
from campaigns.matching.rules_cache import rules_in_force
from campaigns.models import Rule, Template
from tests import baker_recipes
from tests.world import minutes, rule_make


@pytest.fixture
def welcome(db):
    rule = rule_make("welcome", "user_signup")
    rules_in_force()  # cached from here on
    return rule


def the_rule() -> RuleData:
    return next(r for r in rules_in_force()[1] if r.name == "welcome")


def test_unchanged_rules_cost_one_query_per_batch(welcome):
    with CaptureQueriesContext(connection) as queries:
        rules_in_force()
    assert len(queries) == 1


def test_a_bulk_update_that_sends_no_signal_is_seen_by_the_next_batch(welcome):
    Rule.objects.filter(pk=welcome.pk).update(delay=minutes(30))
    assert the_rule().delay == minutes(30)


def test_a_new_condition_is_seen_by_the_next_batch(welcome):
    baker_recipes.condition.make(rule=welcome, source="event", key="plan", operator="eq", value="pro")
    assert [c.key for c in the_rule().conditions] == ["plan"]


def test_a_template_change_is_seen_by_the_next_batch(welcome):
    Template.objects.filter(pk=welcome.template_id).update(category="marketing")
    assert the_rule().category == "marketing"


def test_a_settings_change_is_seen_by_the_next_batch(welcome):
    baker_recipes.campaign_settings.make(fallback_timezone="Europe/Paris")
    assert rules_in_force()[0].fallback_timezone == "Europe/Paris"


def test_a_deleted_rule_is_gone_from_the_next_batch(welcome):
    Rule.objects.filter(pk=welcome.pk).delete()
    assert [r.name for r in rules_in_force()[1]] == []
