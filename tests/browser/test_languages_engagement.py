"""A marketer gives a template a French translation and previews it in French; then makes a
follow-up that depends on engagement with the welcome email, and simulates it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import Decision, Rule, Send, TemplateTranslation
from tests import baker_recipes
from tests.browser.conftest import Login, login, rule_row, screenshot

# Browser tests start the real web process too, so `-m "not e2e"` leaves them out with the others.
pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_a_marketer_adds_a_french_translation_and_previews_it_in_french(
    page: Page, marketer: Login, demo_campaign: dict[str, Rule]
) -> None:
    login(page, marketer)

    page.get_by_role("link", name="Templates", exact=True).first.click()
    page.get_by_role("link", name="Welcome", exact=True).click()
    page.get_by_role("button", name=re.compile("Add another translation", re.IGNORECASE)).click()
    translation = page.locator("#translations-0")
    translation.get_by_label("Locale").fill("fr_fr")
    translation.get_by_label("Subject").fill("Bienvenue, {{ contact.first_name|default:'vous' }} !")
    translation.get_by_label("Text body").fill("Bonjour et bienvenue.")
    page.get_by_role("button", name="Save and continue editing").click()

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert list(TemplateTranslation.objects.values_list("locale", flat=True)) == ["fr-FR"]

    page.get_by_role("link", name="Preview", exact=True).click()
    page.get_by_label("Contact's locale").fill("fr-FR")
    page.get_by_role("button", name="Show this language").click()

    expect(page.locator("#preview-language-shown")).to_have_text("fr-FR translation (for locale fr-FR)")
    expect(page.locator("#preview-subject")).to_have_text("Bienvenue, vous !")
    expect(page.locator("#preview-text")).to_have_text("Bonjour et bienvenue.")
    screenshot(page, "template-preview-french")

    # A Canadian contact's chain is fr-CA → fr: fr-FR is not on it, so they get the default.
    page.get_by_label("Contact's locale").fill("fr-CA")
    page.get_by_role("button", name="Show this language").click()
    expect(page.locator("#preview-language-shown")).to_have_text("the template's default (no translation for fr-CA)")


def test_a_marketer_makes_a_follow_up_depend_on_the_welcome_email_and_simulates_it(
    page: Page, marketer: Login, demo_campaign: dict[str, Rule]
) -> None:
    welcome = demo_campaign["user_signup"]
    ann = baker_recipes.contact.make(user_id="ann", email="ann@example.com", traits={"first_name": "Ann"})
    baker_recipes.scheduled_send.make(rule=welcome, contact=ann, state="sent", sent_at=welcome.updated_at,
                                      opened_at=welcome.updated_at)  # fmt: skip
    login(page, marketer)

    page.goto("/admin/campaigns/rule/add/")
    page.get_by_label("Name").fill("Welcome nudge")
    page.get_by_label("Trigger event").fill("app_opened")
    page.get_by_label("Template").select_option(label="Welcome")
    page.get_by_role("button", name=re.compile("Add another condition", re.IGNORECASE)).click()
    condition = page.locator("#conditions-0")
    condition.locator("select[name$='-source']").select_option(label="Engagement with an earlier rule's email")
    # The key offers the rules' names to pick from.
    key = condition.locator("input[name$='-key']")
    expect(page.locator(f"datalist#{key.get_attribute('list')} option[value='Welcome']")).to_have_count(1)
    key.fill("Welcome")
    condition.locator("select[name$='-operator']").select_option(label="was not opened")
    page.get_by_role("button", name="Save and continue editing").click()

    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    expect(page.locator(".field-summary")).to_contain_text(
        "When app_opened happens and the email of rule 'Welcome' was not opened, send 'Welcome' right away"
    )

    page.goto("/admin/campaigns/simulator/")
    page.get_by_label("Event name").fill("app_opened")
    page.get_by_label("User id").fill("ann")
    page.get_by_role("button", name="Simulate").click()

    nudge = rule_row(page, "#simulation-results", "Welcome nudge")
    expect(nudge).to_contain_text("Skipped: condition false")
    expect(nudge).to_contain_text("condition not met: the email of rule 'Welcome' was not opened")
    screenshot(page, "simulator-engagement")

    # Someone who has not opened it would get the nudge.
    page.get_by_label("User id").fill("bob")
    page.get_by_label("Contact traits override (JSON)").fill('{"email": "bob@example.com"}')
    page.get_by_role("button", name="Simulate").click()
    expect(nudge).to_contain_text("Scheduled")
    assert Decision.objects.count() == 0
    assert Send.objects.count() == 1
