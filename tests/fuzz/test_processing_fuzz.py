"""Property test of the whole path of issue #10: whatever JSON a backend posts as properties,
traits and context, ingest answers without a server error, and every stored event is matched,
with a decision for each listening rule: one event never stops matching."""

from __future__ import annotations

from datetime import time
from itertools import count

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from campaigns.models import Decision, DedupePolicy, Rule
from events.models import Event, WriteKey
from tests import baker_recipes
from tests.conftest import Api
from tests.fuzz.strategies import DB_EXAMPLES, OPERATORS, json_objects, json_values
from tests.steps import events_process_pending
from tests.world import rule_make

SERIAL = count()
KEYS: dict[str, str] = {}


def world() -> str:
    """Rules with a condition of every operator on a property and on a trait, every dedupe policy,
    a send window and a goal; made once, since examples share the test's transaction."""
    if Rule.objects.exists():
        return KEYS["raw"]
    for number, policy in enumerate(DedupePolicy.values):
        rule = rule_make(
            f"Cart {policy}",
            "cart_abandoned",
            dedupe_policy=policy,
            dedupe_property="order_id",
            window_start=time(8 + number),
            window_end=time(20 - number),
            goal_event="order_completed",
        )
        for position, operator in enumerate(OPERATORS):
            value = None if operator.endswith("exists") else [50, "1e309", 10**400, 0.1][number % 4]
            source = "trait" if position % 2 else "property"
            baker_recipes.condition.make(
                rule=rule, position=position, source=source, key="value", operator=operator, value=value
            )
    # Conditions of every operator on one value never all hold; this rule schedules for every order.
    rule_make("Receipt", "order_completed", goal_event="order_completed")
    KEYS["raw"] = WriteKey.issue(name="fuzz")[1]
    return KEYS["raw"]


@pytest.mark.django_db
@settings(max_examples=DB_EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    properties=json_objects(),
    traits=json_objects(),
    context=json_objects(),
    value=json_values(),
    name=st.sampled_from(["cart_abandoned", "order_completed"]),
)
@example({"value": 10**400}, {}, {}, 10**400, "cart_abandoned")  # issue #10
@example({"revenue": 1.7e308}, {"value": 1.7e308}, {}, 1.7e308, "order_completed")  # jsonb gives 309 digits back
@example({"revenue": "999999999999.995"}, {}, {"traits": [1]}, "1e309", "order_completed")
def test_every_event_a_backend_can_post_is_matched(client, properties, traits, context, value, name):
    api = Api(client, world())
    user = f"fuzz-{next(SERIAL)}"
    identify = {
        "type": "identify",
        "userId": user,
        "traits": {**traits, "email": f"{user}@example.com", "value": value},
    }
    track = {
        "type": "track",
        "event": name,
        "userId": user,
        "properties": {**properties, "value": value},
        "context": context,
    }
    answer = api.batch([identify, track])
    assert answer.status_code in (200, 400, 413), answer.content
    events_process_pending()
    for event in Event.objects.filter(user_id=user, type="track"):
        assert event.processed_at is not None
        decisions = Decision.objects.filter(event=event)
        assert decisions.count() == Rule.objects.filter(trigger_event=name).count()
        assert all(decision.reason and decision.detail for decision in decisions)
