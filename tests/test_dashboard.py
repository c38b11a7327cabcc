"""The Dashboard: the funnel, skipped reasons, latency percentiles, conversions and revenue per rule,
for a chosen period, in a bounded number of queries, for people who may look at rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
from anymail.signals import AnymailTrackingEvent
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from campaigns.models import Decision, Rule, Send
from campaigns.reporting.latency import Percentiles, sends_latency_record
from campaigns.reporting.performance import RulePerformance, dashboard_compute
from campaigns.sending.webhooks import provider_event_record
from events.models import Contact, Event
from tests import baker_recipes
from tests.world import rule_make

_numbers = count(1)
MS = timedelta(milliseconds=1)


def sent_email(
    rule: Rule,
    *,
    accepted: datetime,
    took: timedelta,
    delay: timedelta = timedelta(0),
    provider_events: tuple[str, ...] = (),
    revenue: str | None = None,
    with_event: bool = True,
    state: str = "sent",
) -> Send:
    """An event accepted at `accepted`, its decision, and its send: due `delay` later, sent `took` after that."""
    contact, _ = Contact.objects.get_or_create(user_id="u1", defaults={"email": "u1@example.com"})
    event = baker_recipes.track_event.make(
        name=rule.trigger_event, user_id="u1", occurred_at=accepted - timedelta(seconds=1), received_at=accepted
    )
    due = accepted - timedelta(seconds=1) + delay
    # Immediate emails are measured from the event's acceptance, delayed ones from their due time.
    sent_at = (due if delay else accepted) + took
    send = baker_recipes.scheduled_send.make(
        rule=rule, contact=contact, event=event if with_event else None, triggered_at=accepted,
        due_at=due, state=state, sent_at=sent_at if state == "sent" else None,
        converted_at=sent_at + timedelta(hours=1) if revenue is not None else None,
        revenue=Decimal(revenue) if revenue else None,
    )  # fmt: skip
    decision_make(rule, event, reason="scheduled", at=accepted, send=send)
    # What delivery and the webhook receiver keep on the send when it is sent and when SendGrid reports.
    sends_latency_record([send.pk])
    for event_type in provider_events:
        provider_event_record(sendgrid_event(send, event_type, at=sent_at + timedelta(seconds=10)), now=timezone.now())
    return send


def sendgrid_event(send: Send, event_type: str, *, at: datetime, event_id: str | None = None) -> AnymailTrackingEvent:
    """A tracking event as Anymail hands it to the receiver, carrying the send's key."""
    return AnymailTrackingEvent(
        event_type=event_type,
        event_id=event_id or f"pe-{next(_numbers)}",
        timestamp=at,
        metadata={"triggermail_key": send.dedupe_key, "triggermail_send": str(send.pk)},
        recipient="u1@example.com",
        esp_event={},
    )


def skipped_event(rule: Rule, *, reason: str, at: datetime) -> None:
    event = baker_recipes.track_event.make(name=rule.trigger_event, user_id="u1", occurred_at=at, received_at=at)
    decision_make(rule, event, reason=reason, at=at)


def decision_make(rule: Rule, event: Event, *, reason: str, at: datetime, send: Send | None = None) -> None:
    outcome = "scheduled" if reason == "scheduled" else "skipped"
    decision = baker_recipes.decision.make(event=event, rule=rule, outcome=outcome, reason=reason, send=send)
    Decision.objects.filter(pk=decision.pk).update(created_at=at)


@pytest.fixture
def world(db):
    """Two rules' last days: `welcome` sends at once, `recovery` an hour later."""
    now = timezone.now()
    welcome = rule_make("welcome", "user_signup", goal_event="order_completed")
    recovery = rule_make("recovery", "cart_abandoned", delay=timedelta(hours=1), goal_event="order_completed")
    rule_make("idle", "never_happens")
    day_ago = now - timedelta(days=1, minutes=1)
    sent_email(
        welcome,
        accepted=day_ago,
        took=100 * MS,
        provider_events=("queued", "delivered", "opened", "opened", "clicked", "clicked"),
        revenue="40.00",
    )
    sent_email(welcome, accepted=day_ago, took=200 * MS, provider_events=("delivered", "opened"), revenue="")
    sent_email(welcome, accepted=day_ago, took=300 * MS, provider_events=("delivered",))
    sent_email(welcome, accepted=day_ago, took=400 * MS, provider_events=("bounced",))
    sent_email(welcome, accepted=day_ago, took=1000 * MS)
    sent_email(welcome, accepted=day_ago, took=0 * MS, state="cancelled")
    # Its event was pruned: sent and counted, but with nothing to measure latency from.
    sent_email(welcome, accepted=day_ago, took=50 * MS, with_event=False, provider_events=("delivered",))
    skipped_event(welcome, reason="cooldown", at=day_ago)
    skipped_event(welcome, reason="cooldown", at=day_ago)
    skipped_event(welcome, reason="no_email", at=day_ago)
    sent_email(
        recovery,
        accepted=now - timedelta(hours=3),
        delay=timedelta(hours=1),
        took=2000 * MS,
        provider_events=("delivered",),
        revenue="12.50",
    )
    sent_email(recovery, accepted=now - timedelta(hours=3), delay=timedelta(hours=1), took=4000 * MS)
    skipped_event(recovery, reason="capped", at=now - timedelta(hours=3))
    # Outside 7 days, inside 30.
    sent_email(recovery, accepted=now - timedelta(days=10), delay=timedelta(hours=1), took=60 * MS, revenue="1000.00")
    skipped_event(recovery, reason="capped", at=now - timedelta(days=10))  # fmt: skip
    return now


def week(now: datetime) -> dict[str, RulePerformance]:
    dashboard = dashboard_compute(start=now - timedelta(days=7), end=now)
    return {row.rule.name: row for row in dashboard.rows if row.rule} | {"all": dashboard.totals}


def test_the_funnel_counts_each_step_once_per_email(world):
    rows = week(world)
    assert rows["welcome"].funnel == [
        ("triggered", 10), ("scheduled", 7), ("sent", 6), ("delivered", 4), ("opened", 2), ("clicked", 1),
        ("converted", 2),
    ]  # fmt: skip
    assert rows["recovery"].funnel == [
        ("triggered", 3), ("scheduled", 2), ("sent", 2), ("delivered", 1), ("opened", 0), ("clicked", 0),
        ("converted", 1),
    ]  # fmt: skip
    assert rows["idle"].funnel == [(step, 0) for step, _ in rows["idle"].funnel]
    assert rows["all"].funnel[:4] == [("triggered", 13), ("scheduled", 9), ("sent", 8), ("delivered", 5)]


def test_it_counts_skipped_events_by_reason(world):
    rows = week(world)
    assert rows["welcome"].skipped == {"cooldown": 2, "no_email": 1}
    assert rows["recovery"].skipped == {"capped": 1}
    assert rows["all"].skipped == {"cooldown": 2, "no_email": 1, "capped": 1}
    assert rows["all"].skipped_total == 4


def test_conversion_rate_and_revenue_count_the_emails_sent_in_the_period(world):
    rows = week(world)
    assert (rows["welcome"].converted, rows["welcome"].revenue) == (2, Decimal("40.00"))
    assert rows["welcome"].conversion_rate == pytest.approx(2 / 6)
    assert (rows["recovery"].conversion_rate, rows["recovery"].revenue) == (0.5, Decimal("12.50"))
    assert rows["all"].revenue == Decimal("52.50")
    assert rows["idle"].conversion_rate is None


def test_latency_percentiles_measure_immediate_emails_from_acceptance_and_delayed_ones_from_due_time(world):
    rows = week(world)
    # percentile_cont interpolates: 100, 200, 300, 400, 1000 ms → p95 at rank 3.8 = 400 + 0.8 * 600.
    immediate = Percentiles(5, 300 * MS, 880 * MS, 976 * MS)
    delayed = Percentiles(2, 3000 * MS, 3900 * MS, 3980 * MS)
    assert (rows["welcome"].immediate, rows["welcome"].delayed) == (immediate, Percentiles.empty())
    assert (rows["recovery"].immediate, rows["recovery"].delayed) == (Percentiles.empty(), delayed)
    assert (rows["all"].immediate, rows["all"].delayed) == (immediate, delayed)


def test_the_latency_histogram_sorts_emails_into_buckets(world):
    dashboard = dashboard_compute(start=world - timedelta(days=7), end=world)
    buckets = {b.label: (b.immediate, b.delayed) for b in dashboard.latency_histogram if b.immediate or b.delayed}
    assert buckets == {"0 to 250 ms": (2, 0), "250 ms to 500 ms": (2, 0), "1 s to 2 s": (1, 0), "2 s to 5 s": (0, 2)}


def test_the_period_decides_what_counts(world):
    month = {str(row.rule): row for row in dashboard_compute(start=world - timedelta(days=30), end=world).rows}
    assert (month["recovery"].sent, month["recovery"].revenue, month["recovery"].skipped) == (
        3, Decimal("1012.50"), {"capped": 2},
    )  # fmt: skip
    assert month["recovery"].delayed.count == 3
    day = {str(row.rule): row for row in dashboard_compute(start=world - timedelta(hours=24), end=world).rows}
    assert (day["recovery"].sent, day["welcome"].sent, day["welcome"].triggered) == (2, 0, 0)
    # A period that ended before the recovery emails of the last hours.
    earlier = dashboard_compute(start=world - timedelta(days=30), end=world - timedelta(days=2)).rows
    assert {str(row.rule): row.sent for row in earlier} == {"idle": 0, "recovery": 1, "welcome": 0}


def test_the_page_takes_a_quick_period_or_dates(admin_client, world):
    page = admin_client.get("/admin/campaigns/performance/?period=24h").content.decode()
    assert "<strong>24 hours</strong>" in page and "Showing last 24 hours" in page
    first, last = (world - timedelta(days=11)).date(), (world - timedelta(days=9)).date()
    page = admin_client.get(f"/admin/campaigns/performance/?from={first}&to={last}").content.decode()
    assert f"Showing {first} to {last}" in page
    assert '<td class="number">1000.00</td>' in page
    page = admin_client.get("/admin/campaigns/performance/?from=2026-05-02&to=2026-05-01").content.decode()
    assert "The end date is before the start date." in page and "Showing last 30 days" in page


def test_the_page_shows_funnel_skips_latency_and_charts(admin_client, world):
    page = admin_client.get("/admin/campaigns/performance/?period=7d").content.decode()
    assert "<title>Dashboard | TriggerMail</title>" in page
    for heading in ("dashboard-funnel", "dashboard-skipped", "dashboard-latency", "funnel-chart", "latency-chart"):
        assert f'id="{heading}"' in page
    assert page.count("<svg") >= 2 and "Funnel for all rules: triggered 13, scheduled 9, sent 8" in page
    assert '<th class="number">Frequency cap</th>' in page
    assert '<td class="number">880 ms</td>' in page and '<td class="number">3.9 s</td>' in page
    assert '<th class="number">52.50</th>' in page


def test_the_page_takes_a_bounded_number_of_queries(admin_client, world, django_assert_max_num_queries):
    for number in range(20):
        rule = rule_make(f"more {number}", "user_signup")
        sent_email(rule, accepted=world - timedelta(hours=1), took=100 * MS, provider_events=("delivered",))
    with django_assert_max_num_queries(12):
        assert admin_client.get("/admin/campaigns/performance/?period=90d").status_code == 200


def test_it_is_linked_from_the_admin_index(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert '<a href="/admin/campaigns/performance/">Dashboard</a>' in page


def test_staff_who_may_not_view_rules_are_refused(client, db):
    staff = User.objects.create_user("marketer", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/campaigns/performance/").status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_rule"))
    staff = User.objects.get(pk=staff.pk)
    client.force_login(staff)
    assert client.get("/admin/campaigns/performance/").status_code == 200
