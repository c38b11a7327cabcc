"""Property tests of conversions: any `revenue` or `total` gives an amount the column can hold,
or none, and a goal event with it converts its email."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from campaigns.matching.conversions import conversions_record, revenue_of
from campaigns.matching.selectors import rule_data
from campaigns.models import Send
from tests import baker_recipes
from tests.fuzz.strategies import DB_EXAMPLES, NUMBER_TEXTS, json_objects, json_values
from tests.world import rule_make

SENT_AT = datetime(2026, 3, 2, 10, tzinfo=UTC)
amounts = st.one_of(json_values(unstorable=True), st.sampled_from(NUMBER_TEXTS), st.decimals().map(str))
# Send.revenue is DecimalField(max_digits=14, decimal_places=2).
LARGEST = Decimal("999999999999.99")


@given(revenue=amounts, total=amounts, others=json_objects(unstorable=True))
@example("999999999999.995", None, {})  # rounds up to 13 integer digits: the column's 14 overflowed
@example(10**400, "1e309", {})
@example("1E+999999999", None, {})  # abs() rounds to the context: decimal.Overflow (found by make fuzz)
def test_revenue_is_none_or_fits_the_column(revenue, total, others):
    amount = revenue_of({**others, "revenue": revenue, "total": total})
    if amount is not None:
        assert amount.is_finite() and -LARGEST <= amount <= LARGEST
        assert amount == amount.quantize(Decimal("0.01")) and amount.as_tuple().exponent == -2


@pytest.mark.django_db
@settings(max_examples=DB_EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(revenue=amounts)
@example("999999999999.995")
@example(-(10**20))
@example("1E+999999999")
def test_a_goal_event_with_any_revenue_converts_its_email(revenue):
    serial = next(SERIAL)
    rule = rule_make(f"Recovery {serial}", "cart_abandoned", goal_event=f"order_{serial}")
    contact = baker_recipes.contact.make()
    send = baker_recipes.scheduled_send.make(
        rule=rule,
        contact=contact,
        due_at=SENT_AT,
        triggered_at=SENT_AT,
        state=Send.State.SENT,
        sent_at=SENT_AT,
    )
    goal = baker_recipes.track_event.make(
        name=f"order_{serial}",
        user_id=contact.user_id,
        properties={"revenue": revenue} if _storable(revenue) else {},
        occurred_at=SENT_AT + timedelta(hours=1),
        received_at=SENT_AT + timedelta(hours=1),
    )
    goal.refresh_from_db()  # as processing reads it: PostgreSQL's jsonb writes 1.7e308 back as digits
    assert conversions_record([goal], [rule_data(rule)]) == 1
    send.refresh_from_db()
    assert send.conversion_event_id == goal.pk and send.revenue == revenue_of(goal.properties)


def _storable(value: object) -> bool:
    # What ingest would have let through: no NUL, and numbers JSON can write.
    return "\x00" not in repr(value) and "nan" not in repr(value) and "inf" not in repr(value)


SERIAL = count()
