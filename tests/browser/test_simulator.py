"""A marketer asks the simulator what the rules would do with an event, and why, before it happens."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import Condition, Decision, Rule, Send
from tests import baker_recipes
from tests.browser.conftest import Login, login, rule_row, screenshot

# Browser tests start the real web process too, so `-m "not e2e"` leaves them out with the others.
pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_the_simulator_shows_what_each_rule_would_do_and_why(
    page: Page, marketer: Login, demo_campaign: dict[str, Rule]
) -> None:
    big_carts = baker_recipes.rule.make(
        name="Big cart recovery", trigger_event="cart_abandoned", template=demo_campaign["cart_abandoned"].template
    )
    big_carts.conditions.create(source="property", key="value", operator=Condition.Operator.GREATER, value=50)
    baker_recipes.contact.make(user_id="ann", email="ann@example.com", traits={"first_name": "Ann"})
    login(page, marketer)

    page.get_by_role("link", name="Rules", exact=True).first.click()
    page.get_by_role("link", name="Simulator", exact=True).first.click()
    page.get_by_label("Event name").fill("cart_abandoned")
    page.get_by_label("User id").fill("ann")
    page.get_by_label("Properties (JSON)").fill(json.dumps({"value": 20, "currency": "EUR"}))
    page.get_by_role("button", name="Simulate").click()

    skipped = rule_row(page, "#simulation-results", "Big cart recovery")
    expect(skipped).to_contain_text("Skipped: condition false")
    expect(skipped).to_contain_text("condition not met: property value > 50")
    scheduled = rule_row(page, "#simulation-results", "Cart recovery")
    expect(scheduled).to_contain_text("Scheduled")
    expect(scheduled).to_contain_text("You left something in your cart, Ann")
    screenshot(page, "simulator")

    # The same event from someone the app never identified: no address, so nothing would be sent.
    page.get_by_label("User id").fill("stranger")
    page.get_by_role("button", name="Simulate").click()
    expect(page.locator("#simulation-summary")).to_contain_text("no email address")
    expect(scheduled).to_contain_text("Skipped: no email address")

    assert not Decision.objects.exists()
    assert not Send.objects.exists()
