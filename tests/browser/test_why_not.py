"""A marketer finds out, in Admin, why a user got no email: the contact's page shows every decision."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import Condition, Rule
from tests import baker_recipes
from tests.browser.conftest import Login, events_post, login, rule_row, screenshot
from tests.steps import events_process_pending

# Browser tests start the real web process too, so `-m "not e2e"` leaves them out with the others.
pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def cart_abandoned(user_id: str, *, value: float, email: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "event": "cart_abandoned",
        "userId": user_id,
        "properties": {"value": value, "currency": "EUR"},
        "messageId": f"cart-{user_id}",
    }
    if email:
        message["context"] = {"traits": {"email": email}}
    return message


def contact_open(page: Page, user_id: str) -> None:
    """From the admin's home page, search the contacts for a user id and open the one found."""
    page.goto("/admin/")
    page.get_by_role("link", name="Contacts", exact=True).first.click()
    page.get_by_role("textbox", name="Search").fill(user_id)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.get_by_role("link", name=user_id, exact=True).click()
    expect(page.get_by_role("heading", name=user_id)).to_be_visible()


def test_the_contact_page_says_which_condition_kept_the_email_back(
    page: Page, web: str, marketer: Login, demo_campaign: dict[str, Rule], write_key: str
) -> None:
    big_carts = baker_recipes.rule.make(
        name="Big cart recovery", trigger_event="cart_abandoned", template=demo_campaign["cart_abandoned"].template
    )
    big_carts.conditions.create(source="property", key="value", operator=Condition.Operator.GREATER, value=50)
    events_post(
        web,
        write_key,
        [
            cart_abandoned("shopper-1", value=80, email="shopper1@example.com"),
            cart_abandoned("shopper-2", value=20, email="shopper2@example.com"),
        ],
    )
    events_process_pending()

    login(page, marketer)
    contact_open(page, "shopper-2")

    skipped = rule_row(page, ".field-decisions table", "Big cart recovery")
    expect(skipped).to_contain_text("skipped")
    expect(skipped).to_contain_text("condition false")
    expect(skipped).to_contain_text("condition not met: property value > 50")
    scheduled = rule_row(page, ".field-decisions table", "Cart recovery")
    expect(scheduled).to_contain_text("scheduled")
    expect(page.locator(".field-sends")).to_contain_text("Cart recovery")
    screenshot(page, "contact-page-decision-trace")


def test_the_event_page_says_when_a_user_has_no_email_address(
    page: Page, web: str, marketer: Login, demo_campaign: dict[str, Rule], write_key: str
) -> None:
    # A user the backend never identified has events but no contact: the event's own trace answers.
    events_post(
        web,
        write_key,
        [
            cart_abandoned("shopper-1", value=80, email="shopper1@example.com"),
            cart_abandoned("anonymous-3", value=80, email=None),
        ],
    )
    events_process_pending()

    login(page, marketer)
    page.get_by_role("link", name="Events", exact=True).first.click()
    page.get_by_role("textbox", name="Search").fill("anonymous-3")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("row").filter(has_text="shopper-1")).to_have_count(0)
    row = page.get_by_role("row").filter(has_text="anonymous-3").filter(has_text="cart_abandoned")
    row.get_by_role("link").first.click()

    expect(page.locator(".field-contact_link")).to_contain_text("anonymous-3")
    skipped = rule_row(page, ".field-trace table", "Cart recovery")
    expect(skipped).to_contain_text("skipped")
    expect(skipped).to_contain_text("no email address")
    expect(skipped).to_contain_text("contact 'anonymous-3' has no email address")
    screenshot(page, "event-page-decision-trace-no-email")
