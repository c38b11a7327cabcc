"""The Admin works under its Content-Security-Policy: an administrator walks the main pages and uses
their scripts (the event select that loads a sample, the date pickers, the email preview frame), and
Chromium reports no violation. The `page` fixture fails any browser test on a violation too; this
test makes sure every main page is visited at least once."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from campaigns.consent.policy import preferences_url
from campaigns.models import Rule, Send
from events.models import Contact, Event
from tests.browser.conftest import Login, csp_violations_watch, events_post, login

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture
def administrator(transactional_db: None) -> Login:
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("ada", email="ada@example.com", password=password)
    return Login(username="ada", password=password)


def visit(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None and response.ok, f"{path}: {response.status if response else 'no answer'}"
    policy = response.header_value("Content-Security-Policy") or ""
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0], path
    page.wait_for_load_state("load")


def test_the_main_admin_pages_and_the_preference_page_run_without_a_policy_violation(
    page: Page, web: str, administrator: Login, demo_campaign: dict[str, Rule], write_key: str
) -> None:
    events_post(
        web,
        write_key,
        [
            {"type": "identify", "userId": "ann", "traits": {"email": "ann@example.com", "first_name": "Ann"}},
            {"type": "track", "event": "cart_abandoned", "userId": "ann", "properties": {"value": 35}},
        ],
    )
    recovery = demo_campaign["cart_abandoned"]
    contact = Contact.objects.get(user_id="ann")
    event = Event.objects.get(name="cart_abandoned")
    violations = csp_violations_watch(page)
    login(page, administrator)

    for path in [
        "/admin/",
        "/admin/campaigns/rule/",
        "/admin/campaigns/rule/add/",
        f"/admin/campaigns/rule/{recovery.pk}/change/",
        f"/admin/campaigns/rule/{recovery.pk}/history/",
        "/admin/campaigns/template/",
        f"/admin/campaigns/template/{recovery.template.pk}/change/",
        "/admin/campaigns/send/",
        "/admin/campaigns/decision/",
        "/admin/campaigns/suppression/",
        "/admin/campaigns/campaignsettings/",
        "/admin/events/event/",
        f"/admin/events/event/{event.pk}/change/",
        "/admin/events/contact/",
        f"/admin/events/contact/{contact.pk}/change/",
        "/admin/events/writekey/",
        "/admin/events/writekey/add/",
    ]:
        visit(page, path)

    # The Dashboard and its date pickers (Django's calendar script).
    visit(page, "/admin/campaigns/performance/")
    expect(page.locator("#dashboard-charts svg").first).to_be_visible()
    page.get_by_label("From").fill("2026-01-01")

    # The template preview: the event select's script loads the sample; the email's HTML shows in its frame.
    visit(page, f"/admin/campaigns/template/{recovery.template.pk}/preview/")
    page.locator("#id_event").select_option(index=1)
    expect(page.frame_locator("#preview-html").get_by_text("Hi Ann,")).to_be_visible()

    # The simulator, run once.
    visit(page, "/admin/campaigns/simulator/")
    page.get_by_label("Event name").fill("cart_abandoned")
    page.get_by_label("User id").fill("ann")
    page.get_by_role("button", name="Simulate").click()
    expect(page.locator("#simulation-results")).to_contain_text("Scheduled")

    # The preference page a recipient opens from an email.
    visit(page, urlsplit(preferences_url(contact)).path)
    expect(page.get_by_role("button").first).to_be_visible()
    assert not Send.objects.filter(state=Send.State.SENT).exists()

    assert violations == []
