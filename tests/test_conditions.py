"""Conditions: every operator, on event properties and contact traits, with dotted paths."""

from __future__ import annotations

import pytest

from campaigns.matching.conditions import ConditionData, condition_holds

PROPERTIES = {
    "total": 75,
    "total_text": "75.50",
    "currency": "EUR",
    "coupon": None,
    "cart": {"value": 120, "items": [{"sku": "A1"}, {"sku": "B2"}], "tags": ["sale", 3]},
    "note": "gift for mum",
    "gift": True,
}
TRAITS = {"plan": "gold", "orders": "3", "address": {"country": "FR"}}


def holds(key: str, operator: str, value: object = None, *, source: str = "property") -> bool:
    return condition_holds(ConditionData(source, key, operator, value), PROPERTIES, TRAITS)


@pytest.mark.parametrize(
    ("key", "operator", "value", "expected"),
    [
        ("currency", "eq", "EUR", True),
        ("currency", "eq", "USD", False),
        ("total", "eq", "75", True),  # a numeric string equals the number
        ("total_text", "eq", 75.5, True),
        ("currency", "ne", "USD", True),
        ("currency", "ne", "EUR", False),
        ("missing", "ne", "EUR", True),
        ("total", "gt", 74, True),
        ("total", "gt", 75, False),
        ("total_text", "gt", "75.4", True),
        ("total", "gte", 75, True),
        ("total", "gte", 76, False),
        ("total", "lt", 76, True),
        ("total", "lt", 75, False),
        ("total", "lte", 75, True),
        ("total", "lte", 74.9, False),
        ("currency", "gt", 1, False),  # not a number: never greater
        ("missing", "lt", 1, False),
        ("note", "contains", "gift", True),
        ("note", "contains", "dad", False),
        ("cart.tags", "contains", "sale", True),
        ("cart.tags", "contains", "3", True),
        ("cart.tags", "contains", "full", False),
        ("cart", "contains", "value", True),
        ("total", "contains", 7, False),
        ("cart.value", "exists", None, True),
        ("coupon", "exists", None, False),  # null counts as absent
        ("missing", "exists", None, False),
        ("missing", "not_exists", None, True),
        ("coupon", "not_exists", None, True),
        ("currency", "not_exists", None, False),
        ("cart.value", "gte", 100, True),
        ("cart.items.1.sku", "eq", "B2", True),
        ("cart.items.5.sku", "exists", None, False),
        ("cart.value.deeper", "exists", None, False),
        ("gift", "eq", True, True),
    ],
)
def test_property_operators(key, operator, value, expected):
    assert holds(key, operator, value) is expected


@pytest.mark.parametrize(
    ("key", "operator", "value", "expected"),
    [
        ("plan", "eq", "gold", True),
        ("orders", "gte", 3, True),
        ("orders", "lt", 3, False),
        ("address.country", "eq", "FR", True),
        ("currency", "exists", None, False),  # a property is not a trait
    ],
)
def test_trait_operators(key, operator, value, expected):
    assert holds(key, operator, value, source="trait") is expected


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-Infinity"])
def test_non_finite_strings_are_compared_as_text_not_numbers(text):
    props = {"code": text}
    assert condition_holds(ConditionData("property", "code", "eq", text), props, {}) is True
    assert condition_holds(ConditionData("property", "code", "gt", 0), props, {}) is False


def test_a_boolean_is_not_the_number_one():
    props = {"gift": True, "count": 1}
    assert condition_holds(ConditionData("property", "gift", "eq", 1), props, {}) is False
    assert condition_holds(ConditionData("property", "count", "eq", True), props, {}) is False


def test_it_describes_a_condition_for_people():
    assert ConditionData("trait", "plan", "eq", "gold").describe() == "trait plan equals 'gold'"
    assert ConditionData("property", "coupon", "not_exists").describe() == "property coupon does not exist"
