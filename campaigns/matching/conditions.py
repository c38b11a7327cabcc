"""Evaluating a rule's conditions against an event's properties and a contact's traits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from campaigns.matching.engagement import SOURCE as ENGAGEMENT
from campaigns.matching.engagement import engagement_describe

MISSING = object()


@dataclass(frozen=True)
class ConditionData:
    source: str  # "property", "trait" or "engagement"
    key: str  # dotted path; for engagement, the earlier rule's name
    operator: str
    value: Any = None
    # For engagement: the id of the rule the key names (None when no rule has that name).
    rule_id: int | None = None

    def describe(self) -> str:
        if self.source == ENGAGEMENT:
            return engagement_describe(self.key, self.operator)
        label = "trait" if self.source == "trait" else "property"
        if self.operator in ("exists", "not_exists"):
            return f"{label} {self.key} {OPERATOR_WORDS[self.operator]}"
        return f"{label} {self.key} {OPERATOR_WORDS[self.operator]} {self.value!r}"


OPERATOR_WORDS = {
    "eq": "equals",
    "ne": "does not equal",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "contains": "contains",
    "exists": "exists",
    "not_exists": "does not exist",
}


def value_at(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path ("cart.value"), or MISSING."""
    current: Any = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        # isdecimal, not isdigit: "²" is a digit that int() refuses, and a path is the marketer's text.
        elif isinstance(current, list) and part.isdecimal() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def _number(value: Any) -> Decimal | None:
    """The value as an exact number, or None when it is not a number.

    Exact, because a float cannot hold every number JSON can write: float(10**400) raises
    OverflowError (issue #10), float("1e309") is infinity and float(10**23) is not 1e23. A float
    is read as its shortest decimal form, which is what its JSON text said (0.1 stays 0.1).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float | str):
        try:
            number = Decimal(repr(value) if isinstance(value, float) else value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    # Decimal reads "nan" and "inf"; to a marketer those are words, and NaN equals nothing.
    return number if number.is_finite() else None


def _equal(actual: Any, expected: Any) -> bool:
    # JSON true and 1 are different answers (Python says True == 1).
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    # "50" in an event and 50 in a rule mean the same to a marketer.
    left, right = _number(actual), _number(expected)
    if left is not None and right is not None:
        return left == right
    return bool(actual == expected)


def condition_holds(condition: ConditionData, properties: Mapping[str, Any], traits: Mapping[str, Any]) -> bool:
    actual = value_at(traits if condition.source == "trait" else properties, condition.key)
    op = condition.operator
    if op == "exists":
        return actual is not MISSING and actual is not None
    if op == "not_exists":
        return actual is MISSING or actual is None
    if actual is MISSING:
        return op == "ne"
    if op == "eq":
        return _equal(actual, condition.value)
    if op == "ne":
        return not _equal(actual, condition.value)
    if op == "contains":
        if isinstance(actual, str):
            return str(condition.value) in actual
        if isinstance(actual, list | tuple):
            return any(_equal(item, condition.value) for item in actual)
        if isinstance(actual, Mapping):
            return str(condition.value) in actual
        return False
    left, right = _number(actual), _number(condition.value)
    if left is None or right is None:
        return False
    if op == "gt":
        return left > right
    if op == "gte":
        return left >= right
    if op == "lt":
        return left < right
    if op == "lte":
        return left <= right
    raise ValueError(f"unknown condition operator {op!r}")
