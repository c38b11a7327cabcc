"""A marketer previews a template with a real event, tries an edit and sends it to themself as a test."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import Rule, Template
from harness.sendgrid_server import SendGridServer
from tests.browser.conftest import Login, events_post, login, screenshot

# Browser tests start the real web process too, so `-m "not e2e"` leaves them out with the others.
pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_a_marketer_previews_the_cart_recovery_email_and_sends_a_test(
    page: Page,
    web: str,
    marketer: Login,
    demo_campaign: dict[str, Rule],
    write_key: str,
    sendgrid_server: SendGridServer,
) -> None:
    events_post(
        web,
        write_key,
        [
            {"type": "identify", "userId": "ann", "traits": {"email": "ann@example.com", "first_name": "Ann"}},
            {
                "type": "track",
                "event": "cart_abandoned",
                "userId": "ann",
                "properties": {
                    "products": [{"name": "Teapot", "quantity": 1, "price": 35}],
                    "value": 35,
                    "currency": "EUR",
                },
            },
        ],
    )
    login(page, marketer)

    page.get_by_role("link", name="Templates", exact=True).first.click()
    page.get_by_role("link", name="Cart recovery", exact=True).click()
    page.get_by_role("link", name="Preview", exact=True).click()

    # The latest cart_abandoned event and Ann's stored contact are the sample.
    expect(page.locator("#preview-subject")).to_have_text("You left something in your cart, Ann")
    expect(page.locator("#preview-text")).to_contain_text("Teapot x 1, 35.00")
    expect(page.locator("#preview-text")).to_contain_text("Cart total: 35.00 EUR")
    html = page.frame_locator("#preview-html")
    expect(html.get_by_role("heading", name="Your cart is saved")).to_be_visible()
    expect(html.get_by_text("Hi Ann,")).to_be_visible()
    screenshot(page, "template-preview")

    # An edit is previewed, and sent as a test, without being saved.
    source = page.locator("#preview-source")
    if source.get_attribute("open") is None:
        source.locator("summary").click()
    page.get_by_label("Subject").fill("Still thinking about it, {{ contact.first_name }}?")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.locator("#preview-subject")).to_have_text("Still thinking about it, Ann?")
    expect(page.locator("#preview-edited")).to_contain_text("Showing edits that are not saved")

    page.get_by_label("Send a test to").fill("mara@example.com")
    page.get_by_role("button", name="Send test email").click()

    expect(page.locator(".messagelist")).to_contain_text("Test email sent to mara@example.com")
    [test_email] = sendgrid_server.accepted
    assert test_email.to == ["mara@example.com"]
    assert test_email.subject == "[Test] Still thinking about it, Ann?"
    assert Template.objects.get(name="Cart recovery").subject.startswith("You left something in your cart")


def test_the_preview_warns_about_a_link_from_event_data_and_shows_it_removed(
    page: Page, web: str, marketer: Login, demo_campaign: dict[str, Rule], write_key: str
) -> None:
    events_post(
        web,
        write_key,
        [
            {"type": "identify", "userId": "eve", "traits": {"email": "eve@example.com", "first_name": "Eve"}},
            {
                "type": "track",
                "event": "cart_abandoned",
                "userId": "eve",
                "properties": {"value": 5, "cart_url": "JaVa\tscript:alert(document.cookie)"},
            },
        ],
    )
    login(page, marketer)
    template = Template.objects.get(name="Cart recovery")
    page.goto(f"{web}/admin/campaigns/template/{template.pk}/preview/")

    warnings = page.get_by_role("list", name="Warnings about links")
    expect(warnings).to_contain_text('The link in <a href="{{ event.cart_url|default:')
    expect(warnings).to_contain_text("comes from event data")
    expect(warnings).to_contain_text("In this sample, the unsafe link")
    # The button is still in the email, and leads nowhere.
    button = page.frame_locator("#preview-html").get_by_text("Return to your cart")
    expect(button).to_be_visible()
    assert button.get_attribute("href") is None
    screenshot(page, "template-preview-link-warnings")
