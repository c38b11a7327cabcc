"""The simulator: every rule listening to an event, scheduled or skipped with the reason, the
send-time checks as if due now, the same answers as production, and nothing sent or stored."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.test import Client
from django_q.models import OrmQ

from campaigns.authoring.simulator import SimulatedEvent, simulation_run
from campaigns.models import CampaignSettings, Condition, Decision, IdempotencyKey, Rule, Send
from events.models import Contact, Event
from tests import baker_recipes
from tests.steps import events_process_pending
from tests.world import rule_make, template_make

URL = "/admin/campaigns/simulator/"
# A Monday, 21:00 UTC: a send due an hour later falls outside an 08:00-20:00 window.
NOW = datetime.fromisoformat("2026-03-02T21:00:00+00:00")


@pytest.fixture(autouse=True)
def frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def rules(db: None) -> dict[str, Rule]:
    """Three rules on cart_abandoned: one with a condition the cart fails, one paused, one scheduled
    into its send window; and one on another event."""
    big = rule_make("Big carts", "cart_abandoned", template=template_make("Big"))
    baker_recipes.condition.make(rule=big, source="property", key="value", operator="gte", value=100)
    paused = rule_make("Paused reminder", "cart_abandoned", active=False)
    recovery = rule_make(
        "Recovery",
        "cart_abandoned",
        template=template_make("Recovery", subject="Your {{ event.product }}, {{ contact.first_name }}"),
        delay=timedelta(hours=1),
        window_start=time(8),
        window_end=time(20),
        exit_events=["order_completed"],
    )
    rule_make("Welcome", "signed_up")
    baker_recipes.contact.make(user_id="u-ann", email="ann@example.com", traits={"first_name": "Ann"})
    return {"big": big, "paused": paused, "recovery": recovery}


def cart_event(**fields: Any) -> Event:
    return baker_recipes.track_event.make(
        **{
            "message_id": "m-1",
            "name": "cart_abandoned",
            "user_id": "u-ann",
            "properties": {"value": 40, "product": "Lamp"},
            "occurred_at": NOW,
            "received_at": NOW,
            **fields,
        }
    )


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Event, Decision, Send, IdempotencyKey, Contact, CampaignSettings, OrmQ)
    }


def simulate(client: Client, **query: str) -> str:
    response = client.get(URL, query)
    assert response.status_code == 200
    return response.content.decode()


def row(page: str, rule: Rule) -> str:
    start = page.index(f'id="sim-rule-{rule.pk}"')
    return page[start : page.index("</tr>", start)]


def test_it_shows_each_rule_scheduled_or_skipped_with_the_reason(admin_client, rules, sendgrid):
    before = counts()

    page = simulate(
        admin_client,
        name="cart_abandoned",
        user_id="u-ann",
        properties='{"value": 40, "product": "Lamp"}',
        timestamp=NOW.isoformat(),
    )

    big = row(page, rules["big"])
    assert "Skipped: condition false" in big and "condition not met: property value &gt;= 100" in big
    assert "Skipped: rule inactive" in row(page, rules["paused"])
    recovery = row(page, rules["recovery"])
    assert "<strong>Scheduled</strong>" in recovery
    # Due 22:00, outside 08:00-20:00: moved to the next opening.
    assert "2026-03-03 08:00:00 UTC" in recovery and "moved into the send window" in recovery
    # The contact's zone is UTC here; the window is in the contact's time, so it says whose time it is.
    assert "2026-03-03 08:00:00 contact&#x27;s time (UTC)" in recovery
    assert "Your Lamp, Ann" in recovery
    assert "nothing would stop it" in recovery
    assert page.count('id="sim-rule-') == 3  # not the rule on signed_up
    # Nothing sent, nothing stored, nothing queued.
    assert counts() == before
    assert sendgrid.accepted == []


def test_a_recent_event_can_be_picked_and_its_exit_event_shows_in_the_checks(admin_client, rules):
    event = cart_event(occurred_at=NOW - timedelta(hours=2))
    baker_recipes.track_event.make(
        message_id="m-2",
        name="order_completed",
        user_id="u-ann",
        occurred_at=NOW - timedelta(hours=1),
        received_at=NOW,
    )
    before = counts()

    page = simulate(admin_client, event=str(event.pk))

    recovery = row(page, rules["recovery"])
    assert "<strong>Scheduled</strong>" in recovery
    assert "cancelled: exit event order_completed at" in recovery
    assert counts() == before


def test_traits_can_be_overridden_for_a_simulation(admin_client, rules):
    Condition.objects.filter(rule=rules["big"]).update(source="trait", key="plan", operator="eq", value="pro")

    page = simulate(admin_client, name="cart_abandoned", user_id="u-ann", traits='{"plan": "pro"}')

    assert "<strong>Scheduled</strong>" in row(page, rules["big"])
    assert Contact.objects.get(user_id="u-ann").traits == {"first_name": "Ann"}


def test_a_cooldown_and_a_frequency_cap_reached_show_as_checks_now(admin_client, rules):
    recovery = rules["recovery"]
    Rule.objects.filter(pk=recovery.pk).update(cap_count=1, cooldown=timedelta(hours=6))
    ann = Contact.objects.get(user_id="u-ann")
    baker_recipes.scheduled_send.make(
        rule=recovery,
        contact=ann,
        state=Send.State.SENT,
        dedupe_key="k-earlier",
        triggered_at=NOW,
        due_at=NOW - timedelta(hours=12),
        sending_started_at=NOW - timedelta(hours=1),
        sent_at=NOW - timedelta(hours=1),
    )

    page = simulate(admin_client, name="cart_abandoned", user_id="u-ann")

    checks = row(page, recovery)
    assert "cancelled: cooldown: another email from this rule within 6:00:00" in checks
    assert "cancelled: frequency cap: cap of rule &#x27;Recovery&#x27; of 1 per 1 day reached" in checks


def test_skips_for_no_address_and_unsubscribed_are_explained(admin_client, rules):
    Contact.objects.filter(user_id="u-ann").update(unsubscribed_at=NOW)

    unsubscribed = simulate(admin_client, name="cart_abandoned", user_id="u-ann")
    unknown = simulate(admin_client, name="cart_abandoned", user_id="u-nobody")

    assert "Skipped: unsubscribed" in row(unsubscribed, rules["recovery"])
    assert "Skipped: no email address" in row(unknown, rules["recovery"])
    assert "no stored contact with this user id" in unknown


def test_an_event_no_rule_listens_to_says_which_events_rules_listen_to(admin_client, rules):
    page = simulate(admin_client, name="cart_abandonned", user_id="u-ann")

    assert "No rule listens to “cart_abandonned”. Rules listen to: cart_abandoned, signed_up." in page


def test_bad_json_and_times_are_errors_on_their_fields(admin_client, rules):
    page = simulate(admin_client, name="cart_abandoned", user_id="u-ann", properties="{", timestamp="yesterday")

    assert "Properties is not valid JSON" in page
    assert "&#x27;yesterday&#x27; is not a time" in page
    assert 'id="simulation"' not in page


def test_the_simulation_agrees_with_processing_the_event(rules):
    Rule.objects.filter(pk=rules["recovery"].pk).update(dedupe_policy="per_user_day")
    simulated = simulation_run(
        SimulatedEvent(name="cart_abandoned", user_id="u-ann", properties={"value": 40, "product": "Lamp"}),
        traits=None,
        now=NOW,
    )

    cart_event()
    events_process_pending()

    stored = Decision.objects.order_by("rule_id")
    assert sorted((o.decision.rule_id, o.decision.reason, o.decision.due_at) for o in simulated.outcomes) == [
        (d.rule_id, d.reason, d.due_at) for d in stored
    ]
    # Simulating again now sees the stored send: the per-day key is taken.
    again = simulation_run(SimulatedEvent(name="cart_abandoned", user_id="u-ann", properties={}), traits=None, now=NOW)
    assert {o.rule.name: o.decision.reason for o in again.outcomes}["Recovery"] == "duplicate"


def test_it_is_linked_from_the_index_and_the_rule_list(admin_client, rules):
    assert URL in admin_client.get("/admin/").content.decode()
    assert 'id="simulator-link"' in admin_client.get("/admin/campaigns/rule/").content.decode()


def test_it_asks_for_a_login(client, db):
    response = client.get(URL)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_without_view_rule_are_refused(db):
    user = User.objects.create_user("marketer", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get(URL).status_code == 403

    user.user_permissions.add(Permission.objects.get(codename="view_rule", content_type__app_label="campaigns"))
    assert Client().get(URL).status_code == 302
    client.force_login(User.objects.get(pk=user.pk))
    assert client.get(URL).status_code == 200
