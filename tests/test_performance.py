"""The Dashboard (formerly Campaign performance): per rule counts, conversion rate and revenue over a chosen period."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Decision, Rule
from campaigns.reporting.performance import RulePerformance, dashboard_compute
from events.models import Contact
from tests import baker_recipes
from tests.world import rule_make


def rules_performance(*, start: datetime, end: datetime) -> list[RulePerformance]:
    return dashboard_compute(start=start, end=end).rows


def history(
    rule: Rule, *, days_ago: float, sent: bool = True, revenue: str | None = None, skipped: bool = False
) -> None:
    """One event for `rule`, its decision and (unless skipped) its send, `days_ago` days ago."""
    when = timezone.now() - timedelta(days=days_ago)
    contact, _ = Contact.objects.get_or_create(user_id="u1", defaults={"email": "u1@example.com"})
    event = baker_recipes.track_event.make(name=rule.trigger_event, user_id="u1", occurred_at=when, received_at=when)
    send = None
    if not skipped:
        send = baker_recipes.scheduled_send.make(
            rule=rule, contact=contact, event=event, triggered_at=when, due_at=when,
            state="sent" if sent else "cancelled", sent_at=when if sent else None,
            converted_at=when + timedelta(hours=1) if revenue is not None else None,
            revenue=Decimal(revenue) if revenue else None,
        )  # fmt: skip
    decision = baker_recipes.decision.make(
        event=event, rule=rule, contact=contact, outcome="skipped" if skipped else "scheduled",
        reason="cooldown" if skipped else "scheduled", send=send,
    )  # fmt: skip
    Decision.objects.filter(pk=decision.pk).update(created_at=when)


def test_counts_rates_and_revenue_per_rule_for_the_period(db):
    recovery = rule_make("recovery", "cart_abandoned", goal_event="order_completed")
    welcome = rule_make("welcome", "user_signup")
    rule_make("idle", "never_happens")
    history(recovery, days_ago=1, revenue="40.00")
    history(recovery, days_ago=2, revenue="2.50")
    history(recovery, days_ago=3, revenue="")  # converted without an amount
    history(recovery, days_ago=3)
    history(recovery, days_ago=4, sent=False)
    history(recovery, days_ago=5, skipped=True)
    history(recovery, days_ago=20, revenue="1000.00")  # outside 7 days, inside 30
    history(welcome, days_ago=1)

    with CaptureQueriesContext(connection) as queries:
        now = timezone.now()
        week = {str(row.rule): row for row in rules_performance(start=now - timedelta(days=7), end=now)}
    # Rules, decisions and sends (the latency percentiles and histogram come with them), and on
    # PostgreSQL the transaction's settings: the same however many sends there are.
    assert len([q for q in queries if q["sql"].startswith("SELECT")]) <= 7
    row = week["recovery"]
    assert (row.triggered, row.scheduled, row.sent, row.converted, row.revenue) == (6, 5, 4, 3, Decimal("42.50"))
    assert row.conversion_rate == 0.75
    assert (week["welcome"].sent, week["welcome"].converted, week["welcome"].conversion_rate) == (1, 0, 0.0)
    assert (week["idle"].triggered, week["idle"].conversion_rate) == (0, None)

    month = {str(row.rule): row for row in rules_performance(start=now - timedelta(days=30), end=now)}
    assert (month["recovery"].sent, month["recovery"].converted, month["recovery"].revenue) == (
        5,
        4,
        Decimal("1042.50"),
    )


def test_the_admin_page_shows_the_chosen_period_and_is_linked_from_the_index(admin_client):
    recovery = rule_make("recovery", "cart_abandoned", goal_event="order_completed")
    history(recovery, days_ago=1, revenue="40.00")
    history(recovery, days_ago=1)
    history(recovery, days_ago=60, revenue="5.00")

    assert "/admin/campaigns/performance/" in admin_client.get("/admin/").content.decode()
    page = admin_client.get("/admin/campaigns/performance/?days=90").content.decode()
    assert "<strong>90 days</strong>" in page
    assert '<td class="number">3</td>' in page and "67%" in page and "45.00" in page
    page = admin_client.get("/admin/campaigns/performance/?days=7").content.decode()
    assert '<td class="number">2</td>' in page and "50%" in page and "40.00" in page


def test_the_page_needs_an_admin_login(client, db):
    response = client.get("/admin/campaigns/performance/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
