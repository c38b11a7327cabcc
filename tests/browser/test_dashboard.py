"""A marketer reads on the dashboard what each rule triggered, sent and skipped, and why."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from campaigns.models import Rule
from harness.sendgrid_server import SendGridServer
from tests.browser.conftest import Login, events_post, login, screenshot
from tests.conftest import run_worker

# Browser tests start the real web process too, so `-m "not e2e"` leaves them out with the others.
pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def cell(table: Locator, rule: str, column: str) -> Locator:
    """The cell of a dashboard table in the rule's row, under the header `column`."""
    headers = [text.strip() for text in table.locator("thead th").all_text_contents()]
    row = table.locator("tbody tr").filter(has=table.page.get_by_text(rule, exact=True))
    return row.locator("td").nth(headers.index(column))


def test_the_dashboard_counts_what_each_rule_sent_and_skipped(
    page: Page,
    web: str,
    marketer: Login,
    demo_campaign: dict[str, Rule],
    write_key: str,
    sendgrid: SendGridServer,
) -> None:
    events_post(
        web,
        write_key,
        [
            {"type": "identify", "userId": "ann", "traits": {"email": "ann@example.com", "first_name": "Ann"}},
            {"type": "track", "event": "user_signup", "userId": "ann", "properties": {"plan": "free"}},
            # Nobody told the app this user's address: the cart recovery is skipped.
            {"type": "track", "event": "cart_abandoned", "userId": "anonymous-4", "properties": {"value": 20}},
        ],
    )
    run_worker()
    assert [m.subject for m in sendgrid.accepted] == ["Welcome, Ann! Your account is ready"]
    login(page, marketer)

    page.get_by_role("link", name="Dashboard", exact=True).click()

    funnel = page.locator("table#performance")
    expect(cell(funnel, "Welcome", "Triggered")).to_have_text("1")
    expect(cell(funnel, "Welcome", "Sent")).to_have_text("1")
    expect(cell(funnel, "Cart recovery", "Triggered")).to_have_text("1")
    expect(cell(funnel, "Cart recovery", "Sent")).to_have_text("0")
    skipped = page.locator("table#skipped")
    expect(cell(skipped, "Cart recovery", "No email address")).to_have_text("1")
    screenshot(page, "dashboard")
