"""Property tests of condition evaluation: every operator on any JSON, on either side, decides."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from campaigns.matching.conditions import ConditionData, condition_holds, value_at
from tests.fuzz.strategies import HUGE, OPERATORS, PATHS, conditions, json_objects, json_values, numbers

# Both sides of a comparison: the event's value and the rule's value, anything a sender or a
# marketer can write.
anything = json_values(unstorable=True)


def holds(actual: Any, operator: str, expected: Any) -> bool:
    return condition_holds(ConditionData("property", "v", operator, expected), {"v": actual}, {})


@given(condition=conditions(), properties=json_objects(unstorable=True), traits=json_objects(unstorable=True))
@example(ConditionData("property", "value", "gt", 50), {"value": HUGE}, {})  # issue #10: OverflowError
@example(ConditionData("property", "value", "gte", 10**400), {"value": 1}, {})  # a 400-digit rule value
@example(ConditionData("trait", "a.²", "eq", 1), {}, {"a": [1, 2]})  # "²".isdigit() but int("²") raises
@example(ConditionData("property", "value", "lt", "1e309"), {"value": 17 * 10**307}, {})
def test_every_condition_decides_true_or_false(condition, properties, traits):
    assert condition_holds(condition, properties, traits) in (True, False)
    assert condition.describe()


@given(actual=anything, expected=anything, operator=st.sampled_from(OPERATORS))
def test_the_comparison_helpers_never_raise_and_opposites_disagree(actual, expected, operator):
    result = holds(actual, operator, expected)
    assert result in (True, False)
    assert holds(actual, "eq", expected) is not holds(actual, "ne", expected)
    assert holds(actual, "exists", None) is not holds(actual, "not_exists", None)


@given(big=st.integers(51, HUGE) | st.sampled_from([HUGE, 17 * 10**307, 10**309]))
def test_a_huge_integer_is_greater_than_fifty_and_its_text_equals_it(big):
    assert holds(big, "gt", 50) and holds(-big, "lt", -50)
    assert holds(big, "gte", "50") and not holds(big, "lte", 50)
    assert holds(str(big), "eq", big) and holds(big, "eq", str(big))


@given(left=st.integers(-HUGE, HUGE), right=st.integers(-HUGE, HUGE))
def test_integers_of_any_size_compare_exactly(left, right):
    # float() would round both to the same value (or overflow): exact answers only.
    assert holds(left, "gt", right) is (left > right)
    assert holds(left, "lte", right) is (left <= right)
    assert holds(left, "eq", right) is (left == right)


def exact(number: int | float | str) -> Fraction:
    """The number as its JSON text says it, exactly (a float as its shortest decimal form)."""
    return Fraction(repr(number)) if isinstance(number, float) else Fraction(number)


@given(left=numbers(), right=numbers())
@example(10**23, 1e23)  # equal as written, though float(10**23) is not 1e23
def test_finite_numbers_and_their_json_text_compare_as_written(left, right):
    assert holds(left, "lt", right) is (exact(left) < exact(right))
    assert holds(str(left), "gte", right) is (exact(left) >= exact(right))
    assert holds(left, "eq", right) is (exact(left) == exact(right))


@given(other=anything)
@example(math.nan)
@example("NaN")
def test_nan_equals_nothing_and_compares_with_nothing(other):
    for nan in (math.nan, float("-nan")):
        assert not holds(nan, "eq", other) and holds(nan, "ne", other)
        assert not any(holds(nan, op, other) or holds(other, op, nan) for op in ("gt", "gte", "lt", "lte"))


# Numbers written as text that a float cannot hold, and whether each is above every finite float.
BEYOND_FLOATS = {"1e309": True, "1E+999999999": True, "9" * 400: True, "-1e309": False, "-1E+999999999": False}


@given(text=st.sampled_from(sorted(BEYOND_FLOATS)), bound=st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_written_as_text_beyond_a_float_compare_as_written(text, bound):
    assert holds(text, "gt", bound) is BEYOND_FLOATS[text]
    assert holds(text, "lte", bound) is not BEYOND_FLOATS[text]
    # float("1e-400") is 0.0, yet the text says a number above zero and below the smallest float.
    assert holds("1e-400", "gt", bound) is (bound <= 0)


@given(data=json_objects(unstorable=True), path=st.sampled_from(PATHS) | st.text())
def test_any_dotted_path_is_read_or_missing(data, path):
    value_at(data, path)
