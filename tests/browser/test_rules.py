"""A marketer edits rules in Admin, in a browser, and the next event follows the change."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import Condition, Rule, Send
from tests.browser.conftest import Login, events_post, login, screenshot
from tests.steps import events_process_pending

# Browser tests start the real web process too, so `-m "not e2e"` leaves them out with the others.
pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_a_marketer_shortens_the_cart_recovery_delay_and_the_next_event_follows_it(
    page: Page, web: str, marketer: Login, demo_campaign: dict[str, Rule], write_key: str
) -> None:
    recovery = demo_campaign["cart_abandoned"]
    assert recovery.delay == timedelta(minutes=60)
    login(page, marketer)

    page.get_by_role("link", name="Rules", exact=True).first.click()
    page.get_by_role("link", name="Cart recovery", exact=True).click()
    delay = page.get_by_label("Delay")
    expect(delay).to_have_value("1h")
    delay.fill("30 minutes")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Cart recovery", exact=True))
    expect(row).to_contain_text("30 minutes")
    recovery.refresh_from_db()
    assert recovery.delay == timedelta(minutes=30)

    occurred_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    cart = {
        "type": "track",
        "event": "cart_abandoned",
        "userId": "shopper-1",
        "properties": {"value": 35, "currency": "EUR"},
        "context": {"traits": {"email": "shopper@example.com"}},
        "timestamp": occurred_at.isoformat(),
        "messageId": "cart-1",
    }
    events_post(web, write_key, [cart])
    events_process_pending()

    send = Send.objects.select_related("event").get(rule=recovery, contact__user_id="shopper-1")
    assert send.event is not None
    assert send.event.occurred_at == occurred_at
    assert send.due_at == occurred_at + timedelta(minutes=30)


def test_a_marketer_adds_a_rule_with_a_condition_and_reads_it_in_plain_words(
    page: Page, marketer: Login, demo_campaign: dict[str, Rule]
) -> None:
    login(page, marketer)

    page.goto("/admin/campaigns/rule/add/")
    page.get_by_label("Name").fill("Big cart recovery")
    page.get_by_label("Trigger event").fill("cart_abandoned")
    page.get_by_label("Template").select_option(label="Cart recovery")
    page.get_by_label("Delay").fill("2 hours")
    page.get_by_label("Exit events").fill("order_completed")
    page.get_by_role("button", name=re.compile("Add another condition", re.IGNORECASE)).click()
    condition = page.locator("#conditions-0")
    condition.locator("select[name$='-source']").select_option(label="Event property")
    condition.locator("input[name$='-key']").fill("value")
    condition.locator("select[name$='-operator']").select_option(label="is greater than")
    condition.locator("input[name$='-value']").fill("50")
    page.get_by_role("button", name="Save and continue editing").click()

    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    summary = page.locator(".field-summary")
    expect(summary).to_contain_text(
        "When cart_abandoned happens and property value > 50, send 'Cart recovery' 2 hours later,"
        " unless order_completed happens first"
    )
    screenshot(page, "rule-change-page-with-summary")
    rule = Rule.objects.get(name="Big cart recovery")
    assert [(c.source, c.key, c.operator, c.value) for c in rule.conditions.all()] == [
        (Condition.Source.PROPERTY, "value", Condition.Operator.GREATER, 50)
    ]
