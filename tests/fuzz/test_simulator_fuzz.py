"""Property tests of the simulator: any event and any trait override give a simulation, with a
decision and a reason for every rule listening to the event; nothing raises, nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from campaigns.authoring.demo import DEMO_CAMPAIGN
from campaigns.authoring.simulator import SimulatedEvent, simulation_run
from campaigns.authoring.transfer import document_loads, rules_import
from campaigns.models import DedupePolicy, Rule, Send
from tests import baker_recipes
from tests.fuzz.strategies import DB_EXAMPLES, OPERATORS, instants, json_objects, json_values, texts
from tests.world import rule_make, template_make

NOW = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
STORED = "u-stored"
# What the simulator form admits: any JSON object (json.loads lets NaN, NUL and lone surrogates in).
traits_overrides = st.one_of(
    st.none(),
    json_objects(unstorable=True),
    st.fixed_dictionaries({"email": json_values(unstorable=True), "timezone": json_values(unstorable=True)}),
)


def world() -> None:
    """The demo campaign, plus a cart rule with a condition of every operator, a window, a cap and
    a per-property dedupe; and a stored contact. Made once: examples share the test's transaction."""
    if Rule.objects.exists():
        return
    rules_import(document_loads(DEMO_CAMPAIGN.read_text()))
    rule = rule_make(
        "Big carts",
        "cart_abandoned",
        template=template_make("Big", subject="{{ event.value }} {{ contact.plan }}"),
        dedupe_policy=DedupePolicy.PER_PROPERTY,
        dedupe_property="cart.id",
        window_start=time(8),
        window_end=time(20),
        cap_count=1,
    )
    for position, operator in enumerate(OPERATORS):
        value = None if operator.endswith("exists") else 50
        baker_recipes.condition.make(rule=rule, position=position, key="value", operator=operator, value=value)
    baker_recipes.contact.make(user_id=STORED, email="ann@example.com", timezone="Europe/Paris", traits={"plan": "pro"})


@pytest.mark.django_db
@settings(max_examples=DB_EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["cart_abandoned", "order_completed", "user_signup", "nobody_listens"]),
    user_id=st.one_of(st.just(STORED), texts().map(lambda text: text.strip()[:255]).filter(bool)),
    properties=json_objects(unstorable=True),
    traits=traits_overrides,
    occurred_at=st.none() | instants(),
    now=instants(),
)
@example("cart_abandoned", STORED, {"value": 10**400, "cart": {"id": "\x00"}}, None, None, NOW)
@example("order_completed", STORED, {"revenue": "1e309"}, {"email": "a\x00@example.com", "timezone": "\x00"}, None, NOW)
@example(
    "cart_abandoned", STORED, {"value": float("nan")}, {"email": "\ud800", "timezone": ["Europe/Paris"]}, None, NOW
)
def test_every_simulation_decides_every_listening_rule(name, user_id, properties, traits, occurred_at, now):
    world()
    sends = Send.objects.count()
    event = SimulatedEvent(name=name, user_id=user_id, properties=properties, occurred_at=occurred_at)
    simulation = simulation_run(event, traits=traits, now=now)
    listening = Rule.objects.filter(trigger_event=name).count()
    assert len(simulation.outcomes) == listening
    for outcome in simulation.outcomes:
        assert outcome.reason_label and outcome.decision.detail
        if outcome.decision.scheduled:
            assert outcome.preview is not None
    assert Send.objects.count() == sends
