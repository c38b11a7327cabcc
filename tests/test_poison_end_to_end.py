"""The issue's repro on real processes: Segment's SDK → gunicorn → qcluster → SendGrid-compatible server.

A 400-digit total on a rule with a numeric condition used to kill the dispatcher loop inside a
live qcluster: no later event was matched, and a signup got no welcome. Now the order is matched
(a 400-digit integer is larger than 50) and so is everything after it.
"""

from __future__ import annotations

import pytest

from campaigns.models import Send
from events.models import Event
from harness.processes import wait_until
from tests import baker_recipes
from tests.test_end_to_end import (  # noqa: F401 (fixtures)
    TIMEOUT,
    assert_no_key_accepted_twice,
    broker_env,
    campaigns,
    deployment,
    emails_to,
    provider,
    segment,
    settled,
    write_key,
)

pytestmark = pytest.mark.e2e


def test_a_400_digit_total_does_not_stop_the_dispatcher_and_a_later_signup_gets_its_welcome(
    deployment,  # noqa: F811
    write_key,  # noqa: F811
    campaigns,  # noqa: F811
    provider,  # noqa: F811
):
    baker_recipes.condition.make(rule=campaigns.receipt, key="total", operator="gte", value=50)
    with segment(deployment, write_key) as analytics:
        analytics.identify("e2e-big", {"email": "big@example.com"})
        analytics.track("e2e-big", "order_completed", {"order_id": "B-1", "total": 10**400})
    settled("e2e-big", deployment)
    with segment(deployment, write_key) as analytics:
        analytics.identify("e2e-new", {"email": "new@example.com", "first_name": "Nia"})
        analytics.track("e2e-new", "user_signup", {"plan": "free"})

    [welcome] = wait_until(
        lambda: emails_to(provider, "new@example.com"),
        what="the welcome email to new@example.com after the 400-digit order",
        timeout=TIMEOUT,
        processes=deployment.processes,
    )
    assert welcome.subject.startswith("Welcome, Nia")
    assert len(emails_to(provider, "big@example.com")) == 1
    assert Send.objects.get(contact__user_id="e2e-big").state == Send.State.SENT
    assert not Event.objects.exclude(processing_error="").exists()
    assert_no_key_accepted_twice(provider)
