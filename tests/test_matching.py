"""Pure matching: one decision per rule listening to the event, without a database."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from campaigns.matching.conditions import ConditionData
from campaigns.matching.rules import ContactData, EventData, RuleData, dedupe_key, rules_matching

NOW = datetime.fromisoformat("2026-03-02T10:00:00+00:00")


def event(name: str = "cart_abandoned", *, at: datetime = NOW, id: int = 1, **properties: object) -> EventData:
    return EventData(id=id, name=name, user_id="u1", properties=properties, occurred_at=at)


def contact(**fields: object) -> ContactData:
    values: dict[str, object] = {"user_id": "u1", "email": "u1@example.com", **fields}
    return ContactData(**values)  # type: ignore[arg-type]


def rule(id: int = 1, trigger: str = "cart_abandoned", **fields: object) -> RuleData:
    return RuleData(id=id, name=f"rule {id}", trigger_event=trigger, template_name="t", **fields)  # type: ignore[arg-type]


def test_it_schedules_at_occurred_at_plus_delay():
    [decision] = rules_matching(event(at=NOW - timedelta(minutes=10)), contact(), [rule(delay=timedelta(hours=1))], NOW)
    assert (decision.reason, decision.due_at) == ("scheduled", NOW + timedelta(minutes=50))
    assert decision.dedupe_key == "r:1:e:1"


def test_it_never_schedules_before_now_when_the_event_is_older_than_the_delay():
    old = event(at=NOW - timedelta(days=3))
    [decision] = rules_matching(old, contact(), [rule(delay=timedelta(hours=1))], NOW)
    assert decision.due_at == NOW


def test_it_decides_only_for_rules_listening_to_the_event():
    rules = [rule(1), rule(2, trigger="order_completed"), rule(3)]
    assert [d.rule_id for d in rules_matching(event(), contact(), rules, NOW)] == [1, 3]


def test_a_sequence_of_delays_gives_one_send_per_step():
    rules = [rule(1), rule(2, delay=timedelta(days=2)), rule(3, delay=timedelta(days=7))]
    decisions = rules_matching(event(), contact(), rules, NOW)
    assert [(d.reason, d.due_at) for d in decisions] == [
        ("scheduled", NOW),
        ("scheduled", NOW + timedelta(days=2)),
        ("scheduled", NOW + timedelta(days=7)),
    ]


def test_it_skips_an_inactive_rule():
    [decision] = rules_matching(event(), contact(), [rule(active=False)], NOW)
    assert (decision.reason, decision.due_at) == ("inactive", None)
    assert "paused" in decision.detail


def test_it_skips_a_contact_without_email():
    [decision] = rules_matching(event(), contact(email=""), [rule()], NOW)
    assert decision.reason == "no_email"


def test_it_skips_when_a_condition_is_false_and_says_which():
    rules = [rule(conditions=(ConditionData("property", "cart.value", "gte", 50),))]
    [decision] = rules_matching(event(cart={"value": 20}), contact(), rules, NOW)
    assert decision.reason == "condition_false"
    assert decision.detail == "condition not met: property cart.value >= 50"


def test_it_schedules_when_every_condition_holds_on_properties_and_traits():
    conditions = (ConditionData("property", "cart.value", "gte", 50), ConditionData("trait", "plan", "eq", "gold"))
    [decision] = rules_matching(
        event(cart={"value": "75.5"}), contact(traits={"plan": "gold"}), [rule(conditions=conditions)], NOW
    )
    assert decision.reason == "scheduled"


def test_it_skips_a_duplicate_of_a_live_key():
    [decision] = rules_matching(event(), contact(live_keys=frozenset({"r:1:e:1"})), [rule()], NOW)
    assert decision.reason == "duplicate"


def test_it_skips_within_the_cooldown_of_an_earlier_send():
    earlier = contact(send_times={1: (NOW - timedelta(hours=3),)})
    [decision] = rules_matching(event(), earlier, [rule(cooldown=timedelta(days=1))], NOW)
    assert decision.reason == "cooldown"


def test_it_schedules_after_the_cooldown_has_passed():
    earlier = contact(send_times={1: (NOW - timedelta(days=2),)})
    [decision] = rules_matching(event(), earlier, [rule(cooldown=timedelta(days=1))], NOW)
    assert decision.reason == "scheduled"


def test_a_cooldown_counts_a_send_scheduled_by_the_same_event():
    # A decision made earlier in the same call counts as a stored send for the ones after it.
    twice = [rule(1, cooldown=timedelta(days=1)), rule(1, cooldown=timedelta(days=1), dedupe_policy="once_per_user")]
    assert [d.reason for d in rules_matching(event(), contact(), twice, NOW)] == ["scheduled", "cooldown"]


def test_it_skips_per_property_without_the_property():
    [decision] = rules_matching(
        event(), contact(), [rule(dedupe_policy="per_property", dedupe_property="order_id")], NOW
    )
    assert decision.reason == "no_dedupe_value"
    assert "order_id" in decision.detail


@pytest.mark.parametrize(
    ("policy", "prop", "expected"),
    [
        ("per_event", "", "r:1:e:7"),
        ("once_per_user", "", "r:1:u:u1"),
        ("per_property", "order.id", "r:1:u:u1:p:order.id=A-1"),
    ],
)
def test_dedupe_keys_name_their_scope(policy, prop, expected):
    data = event(id=7, order={"id": "A-1"})
    assert dedupe_key(rule(dedupe_policy=policy, dedupe_property=prop), data, contact()) == expected


def test_per_user_day_uses_the_contacts_local_day():
    # 02:00 UTC on 3 March is still 2 March in New York.
    late_evening = event(at=datetime.fromisoformat("2026-03-03T02:00:00+00:00"))
    per_day = rule(dedupe_policy="per_user_day")
    assert dedupe_key(per_day, late_evening, contact(timezone="America/New_York")) == "r:1:u:u1:d:2026-03-02"
    assert dedupe_key(per_day, late_evening, contact()) == "r:1:u:u1:d:2026-03-03"
    assert dedupe_key(per_day, late_evening, contact(timezone="Not/AZone")) == "r:1:u:u1:d:2026-03-03"


def test_very_long_keys_are_hashed_to_fit_the_column():
    key = dedupe_key(rule(dedupe_policy="once_per_user"), event(), contact(user_id="x" * 300))
    assert key is not None and len(key) < 255 and key.startswith("r:1:h:")
