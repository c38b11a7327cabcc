"""A marketer runs an A/B test in Admin: a rule with two variants and a holdout, tried in the
simulator, read per variant on the Dashboard (at 1366 px), and ended by promoting the winner."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from campaigns.matching.variants import VariantData, variant_assign
from campaigns.models import ChangeRecord, Decision, Rule, Send
from harness.sendgrid_server import SendGridServer
from tests import baker_recipes
from tests.browser.conftest import Login, events_post, login, rule_row, screenshot
from tests.browser.test_layout import overflow
from tests.conftest import run_worker

# Browser tests start the real web process too, so `-m "not e2e"` leaves them out with the others.
pytestmark = [pytest.mark.browser, pytest.mark.e2e]

WEIGHTS = {"A": ("Cart recovery", 45), "B": ("Cart recovery, short", 45), "holdout": ("", 10)}


def variant_of(rule: Rule, user_id: str) -> str:
    variants = [VariantData(name, template, weight) for name, (template, weight) in WEIGHTS.items()]
    chosen = variant_assign(rule.pk, user_id, variants)
    assert chosen is not None
    return chosen.name


def test_a_marketer_runs_an_ab_test_with_a_holdout_and_promotes_the_winner(
    page: Page,
    web: str,
    marketer: Login,
    demo_campaign: dict[str, Rule],
    write_key: str,
    sendgrid: SendGridServer,
) -> None:
    recovery = demo_campaign["cart_abandoned"]
    baker_recipes.template.make(
        name="Cart recovery, short",
        subject="Still yours, {{ contact.first_name }}?",
        text_body="Come back.",
        # A test's emails share the rule template's category and topic (Admin refuses them otherwise).
        topic=recovery.template.topic,
    )
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, marketer)

    # Two variants and a holdout, as rows of the rule.
    page.get_by_role("link", name="Rules", exact=True).first.click()
    page.get_by_role("link", name="Cart recovery", exact=True).click()
    for index, (name, (template, weight)) in enumerate(WEIGHTS.items()):
        page.get_by_role("button", name=re.compile(r"Add another A.B variant", re.IGNORECASE)).click()
        row = page.locator(f"#variants-{index}")
        row.locator("input[name$='-name']").fill(name)
        if template:
            row.locator("select[name$='-template']").select_option(label=template)
        row.locator("input[name$='-weight']").fill(str(weight))
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    expect(page.locator(".field-summary")).to_contain_text(
        "A/B test, each contact always gets the same one: A 'Cart recovery' 45 %, B 'Cart recovery, short' 45 %,"
        " holdout (holdout: sent nothing) 10 %."
    )
    screenshot(page, "rule-with-variants")

    # The simulator says which variant a contact gets, and shows that variant's email.
    people = [f"shopper-{n}" for n in range(40)]
    b_person = next(p for p in people if variant_of(recovery, p) == "B")
    baker_recipes.contact.make(user_id=b_person, email="b@example.com", traits={"first_name": "Bea"})
    page.get_by_role("link", name="Rules", exact=True).first.click()
    page.get_by_role("link", name="Simulator", exact=True).first.click()
    page.get_by_label("Event name").fill("cart_abandoned")
    page.get_by_label("User id").fill(b_person)
    page.get_by_label("Properties (JSON)").fill('{"value": 20}')
    page.get_by_role("button", name="Simulate").click()
    outcome = rule_row(page, "#simulation-results", "Cart recovery")
    expect(outcome).to_contain_text("variant B")
    expect(outcome).to_contain_text("Still yours, Bea?")

    # Forty shoppers abandon carts; the recovery (an hour later) goes out by variant.
    events_post(
        web,
        write_key,
        [
            {
                "type": "track",
                "event": "cart_abandoned",
                "userId": p,
                "properties": {"value": 20},
                "context": {"traits": {"email": f"{p}@example.com"}},
                "timestamp": "2026-01-01T00:00:00Z",
            }
            for p in people
        ],
    )
    run_worker()
    expected = {name: sum(variant_of(recovery, p) == name for p in people) for name in WEIGHTS}
    assert Decision.objects.filter(reason="holdout").count() == expected["holdout"]
    assert {v: Send.objects.filter(variant=v).count() for v in ("A", "B")} == {"A": expected["A"], "B": expected["B"]}

    page.get_by_role("link", name="Home", exact=True).first.click()
    page.get_by_role("link", name="Dashboard", exact=True).first.click()
    test = page.locator(f"table#ab-test-{recovery.pk}")
    for name in WEIGHTS:
        expect(test.locator(f"tr[data-variant='{name}'] td").nth(2)).to_have_text(str(expected[name]))
    expect(test).to_contain_text("control: holdout")
    screenshot(page, "dashboard-ab-test-1366")
    assert overflow(page) <= 0, "the dashboard is wider than a 1366 px window"

    # Promote B: a confirmation, then the rule sends B's template to everyone, recorded in history.
    test.locator("tr[data-variant='B']").get_by_role("link", name="Promote").click()
    expect(page.locator("#promote-summary")).to_contain_text("the rule's template becomes Cart recovery, short")
    page.get_by_role("button", name="Yes, promote variant B").click()
    expect(page.locator(".messagelist")).to_contain_text("Promoted variant B of Cart recovery")
    recovery.refresh_from_db()
    assert recovery.template.name == "Cart recovery, short" and not recovery.variants.exists()
    assert ChangeRecord.objects.filter(object_id=recovery.pk, action="promoted variant B").exists()
