"""Property tests of dedupe keys: any property value gives a key that fits the column, stays
distinct from other values' keys, and can be stored by PostgreSQL (no NUL, valid Unicode)."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from campaigns.matching.rules import ContactData, EventData, RuleData, dedupe_key
from campaigns.models import Send
from tests import baker_recipes
from tests.fuzz.strategies import DB_EXAMPLES, DEDUPE_POLICIES, instants, json_values, zone_names
from tests.world import rule_make

WHEN = datetime(2026, 3, 2, 10, tzinfo=UTC)
values = json_values(unstorable=True)
user_ids = st.text(min_size=1, max_size=255)


def key_of(value: object, *, user_id: str = "u1", policy: str = "per_property", rule_id: int = 1) -> str | None:
    rule = RuleData(rule_id, "r", "order_completed", "t", dedupe_policy=policy, dedupe_property="order_id")
    event = EventData(7, "order_completed", user_id, {"order_id": value}, WHEN)
    return dedupe_key(rule, event, ContactData(user_id=user_id, email="ann@example.com"))


def storable(key: str) -> bool:
    return "\x00" not in key and key.encode(errors="ignore").decode() == key


@given(value=values, user_id=user_ids, policy=st.sampled_from(DEDUPE_POLICIES), at=instants(), zone=zone_names())
@example("\ud800", "u1", "per_property", WHEN, "UTC")  # a lone surrogate: sha256(key.encode()) raised
@example("a\x00b", "u1", "per_property", WHEN, "UTC")  # NUL: PostgreSQL refuses the row
def test_every_key_fits_the_column_and_the_database(value, user_id, policy, at, zone):
    rule = RuleData(3, "r", "order_completed", "t", dedupe_policy=policy, dedupe_property="order_id")
    event = EventData(7, "order_completed", user_id, {"order_id": value}, at)
    key = dedupe_key(rule, event, ContactData(user_id=user_id, email="a@example.com", timezone=zone))
    if key is None:
        assert policy == "per_property" and (value in (None, "") or isinstance(value, dict | list))
        return
    assert key.startswith("r:3:") and len(key) <= 255 and storable(key)


@given(first=values, second=values, user_id=user_ids)
@example("x" * 300 + "a", "x" * 300 + "b", "u1")  # long values are hashed, not cut
def test_different_values_get_different_keys(first, second, user_id):
    if str(first) == str(second):
        return  # 50 and "50" are one order id, as they always were
    one, other = key_of(first, user_id=user_id), key_of(second, user_id=user_id)
    assert one is None or other is None or one != other


@pytest.mark.django_db
@settings(max_examples=DB_EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=values, user_id=user_ids)
@example("a\x00b", "u\x00")
@example("\ud800" * 3, "u1")
def test_a_send_stores_under_any_key(value, user_id):
    rule = rule_make(f"Receipt {next(SERIAL)}", "order_completed")
    key = key_of(value, user_id=user_id, rule_id=rule.pk)
    if key is None:
        return
    send = baker_recipes.scheduled_send.make(rule=rule, dedupe_key=key, due_at=WHEN, triggered_at=WHEN)
    assert Send.objects.get(pk=send.pk).dedupe_key == key


SERIAL = count()
