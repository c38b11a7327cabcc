"""A/B variants in Admin: a marketer (Marketing group, not a superuser) edits them as rows of the
rule, is told what is wrong with them, reads them in the rule's summary and simulator, and ends the
test by promoting one."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from campaigns.models import ChangeRecord, Rule, RuleVariant, Template
from tests import baker_recipes
from tests.test_admin_rules import rule_form

ADD_URL = "/admin/campaigns/rule/add/"


@pytest.fixture
def templates(db: None) -> dict[str, Template]:
    return {
        "long": baker_recipes.template.make(name="Recovery", subject="Your cart is waiting"),
        "short": baker_recipes.template.make(name="Recovery, short", subject="Still yours?"),
        "receipt": baker_recipes.template.make(name="Receipt", category="transactional"),
    }


def with_variants(data: dict, rows: list[tuple[str, Template | None, int]]) -> dict:
    data = {**data, "variants-TOTAL_FORMS": str(len(rows)), "variants-INITIAL_FORMS": "0"}
    for index, (name, template, weight) in enumerate(rows):
        data[f"variants-{index}-name"] = name
        data[f"variants-{index}-template"] = str(template.pk) if template else ""
        data[f"variants-{index}-weight"] = str(weight)
    return data


def test_a_marketer_adds_a_rule_with_two_variants_and_a_holdout(maria, templates):
    rows = [("A", templates["long"], 45), ("B", templates["short"], 45), ("holdout", None, 10)]
    response = maria.post(ADD_URL, with_variants(rule_form(templates["long"]), rows))
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = Rule.objects.get()
    assert [(v.name, v.template.name if v.template else None, v.weight) for v in rule.variants.all()] == [
        ("A", "Recovery", 45), ("B", "Recovery, short", 45), ("holdout", None, 10)
    ]  # fmt: skip
    page = maria.get(f"/admin/campaigns/rule/{rule.pk}/change/").content.decode()
    assert escape("A/B test, each contact always gets the same one: A 'Recovery' 45 %, B 'Recovery, short' 45 %, "
                  "holdout (holdout: sent nothing) 10 %.") in page  # fmt: skip
    # The creation's history record holds the variants, in the campaign file's format.
    assert ChangeRecord.objects.get(object_id=rule.pk).after["variants"][1] == {  # type: ignore[index]
        "name": "B", "template": "Recovery, short", "weight": 45
    }  # fmt: skip


def test_variants_of_another_category_or_only_holdouts_are_refused_with_the_reason(maria, templates):
    mixed = with_variants(rule_form(templates["long"]), [("A", templates["long"], 50), ("B", templates["receipt"], 50)])
    page = maria.post(ADD_URL, mixed).content.decode()
    assert escape("Variant 'B': template 'Receipt' is transactional, but the rule's template is marketing") in page
    nothing = with_variants(rule_form(templates["long"]), [("control", None, 10)])
    page = maria.post(ADD_URL, nothing).content.decode()
    assert "At least one variant must send a template" in page
    zero = with_variants(rule_form(templates["long"]), [("A", templates["long"], 0)])
    page = maria.post(ADD_URL, zero).content.decode()
    assert "Ensure this value is greater than or equal to 1" in page
    assert not Rule.objects.exists()


def test_the_simulator_says_which_variant_and_shows_its_template(maria, templates):
    rule = baker_recipes.rule.make(name="recovery", trigger_event="cart_abandoned", template=templates["long"])
    RuleVariant.objects.create(rule=rule, name="B", template=templates["short"], weight=1)
    baker_recipes.contact.make(user_id="ann", email="ann@example.com")
    page = maria.get("/admin/campaigns/simulator/", {"name": "cart_abandoned", "user_id": "ann"}).content.decode()
    assert "variant B" in page and "Still yours?" in page


def test_a_marketer_promotes_a_variant_from_a_confirmation_page(maria, templates):
    rule = baker_recipes.rule.make(name="recovery", trigger_event="cart_abandoned", template=templates["long"])
    RuleVariant.objects.create(rule=rule, name="A", template=templates["long"], weight=50)
    RuleVariant.objects.create(rule=rule, name="B", template=templates["short"], weight=50)
    url = f"/admin/campaigns/rule/{rule.pk}/promote/"
    page = maria.get(url, {"variant": "B"}).content.decode()
    assert "template becomes <strong>Recovery, short</strong>" in page
    assert Rule.objects.get().template == templates["long"]  # a GET changes nothing
    response = maria.post(url, {"variant": "B"}, follow=True)
    assert "Promoted variant B of recovery" in response.content.decode()
    rule.refresh_from_db()
    assert rule.template == templates["short"] and not rule.variants.exists()
    history = maria.get(f"/admin/campaigns/rule/{rule.pk}/history/").content.decode()
    assert "promoted variant B" in history
