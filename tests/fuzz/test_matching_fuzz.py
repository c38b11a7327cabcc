"""Property tests of matching: any event, contact and rules give one decision per listening rule.

Every Condition operator, source and value type, every dedupe policy, send windows in any zone
(garbage zone names included) near daylight saving changes, cooldowns with prior sends, caps.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from campaigns.matching.conditions import ConditionData
from campaigns.matching.rules import ContactData, EventData, RuleData, rules_matching
from campaigns.matching.windows import SendWindow, window_next_open, zone_resolve
from campaigns.models import Decision
from campaigns.sending.caps import CapLimit, cap_free_at
from tests.fuzz.strategies import durations, instants, windows, worlds, zone_names
from tests.steps import window_is_open

REASONS = set(Decision.Reason.values)
NOW = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
HUGE_CART = EventData(1, "cart_abandoned", "u1", {"value": 10**400}, NOW)
ANN = ContactData(user_id="u1", email="ann@example.com")


def rule(**fields: object) -> RuleData:
    return RuleData(**{"id": 1, "name": "r", "trigger_event": "cart_abandoned", "template_name": "t", **fields})  # type: ignore[arg-type]


@given(world=worlds())
@example((HUGE_CART, ANN, [rule(conditions=(ConditionData("property", "value", "gte", 50),))], NOW))
@example((HUGE_CART, ANN, [rule(dedupe_policy="per_property", dedupe_property="value")], NOW))
@example(
    (
        EventData(1, "cart_abandoned", "u1", {"order_id": "\ud800" * 300}, NOW),
        ANN,
        [rule(dedupe_policy="per_property", dedupe_property="order_id")],
        NOW,
    )
)
def test_every_listening_rule_gets_a_decision_with_a_reason(world):
    event, contact, rules, now = world
    decisions = rules_matching(event, contact, rules, now)
    listening = [r for r in rules if r.trigger_event == event.name]
    assert [d.rule_id for d in decisions] == [r.id for r in listening]
    for decision, listener in zip(decisions, listening, strict=True):
        assert decision.reason in REASONS and decision.detail
        if not decision.scheduled:
            assert decision.due_at is None
            continue
        assert decision.due_at is not None and decision.due_at >= now
        assert 0 < len(decision.dedupe_key) <= 255 and decision.dedupe_key not in contact.live_keys
        if listener.window is not None:
            window = listener.window
            assert window_is_open(decision.due_at, contact.zone(), window)
    # Pure: the same inputs give the same decisions.
    assert rules_matching(event, contact, rules, now) == decisions


@given(world=worlds(), extra=st.integers(0, 3))
def test_a_paused_rule_or_a_contact_without_address_never_schedules(world, extra):
    event, contact, rules, now = world
    paused = [RuleData(**{**r.__dict__, "active": False}) for r in rules]
    assert all(d.reason == "inactive" for d in rules_matching(event, contact, paused, now))
    nobody = ContactData(user_id=contact.user_id, email="", traits=contact.traits, timezone=contact.timezone)
    assert not any(d.scheduled for d in rules_matching(event, nobody, rules, now))


@given(due=instants(), zone=zone_names(), window=windows())
@example(datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "Europe/Paris", SendWindow(time(2, 30), time(3)))
@example(datetime(2011, 12, 29, 20, tzinfo=UTC), "Pacific/Apia", SendWindow(time(8), time(20), (4,)))
def test_the_next_window_opening_is_open_and_never_before_the_due_time(due, zone, window):
    if window is None:
        return
    tz = zone_resolve(zone, "not/a zone")
    opening = window_next_open(due, tz, window.start, window.end, window.days)
    assert due <= opening <= due + timedelta(days=9)
    assert window_is_open(opening, tz, window)
    assert window_next_open(opening, tz, window.start, window.end, window.days) == opening


@given(
    times=st.lists(instants(), max_size=8),
    count=st.integers(0, 6),
    period=durations().filter(bool),
    now=instants(),
)
def test_a_cap_frees_a_slot_exactly_when_one_leaves_the_period(times, count, period, now):
    limit = CapLimit(count, period, "cap")
    free_at = cap_free_at(times, limit, now=now)
    recent = [t for t in times if now - period < t]
    if free_at is None:
        assert len(recent) < count
    else:
        assert free_at > now - period and (count == 0 or len(recent) >= count)
        if count:
            # At that moment one slot is free again.
            assert cap_free_at(times, limit, now=free_at) is None or free_at < max(recent) + period
