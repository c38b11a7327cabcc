"""Property tests of rendering: the demo campaign's templates with any properties and traits
render, or report a template error naming the part; nothing else escapes to the caller."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from campaigns.authoring.demo import DEMO_CAMPAIGN
from campaigns.authoring.rendering import RenderedEmail, RenderError, render_context, template_render
from campaigns.models import Template
from tests.fuzz.strategies import json_objects, texts

DEMO_TEMPLATES = {
    name: Template(name=name, **{k: v for k, v in fields.items() if k != "topic"}, topic=fields.get("topic", ""))
    for name, fields in json.loads(DEMO_CAMPAIGN.read_text())["templates"].items()
}


def render(template: Template, properties: dict[str, Any], traits: dict[str, Any], user_id: str) -> object:
    context = render_context(properties=properties, user_id=user_id, email="ann@example.com", traits=traits)
    try:
        return template_render(template, context)
    except RenderError as exc:
        return exc


@given(
    name=st.sampled_from(sorted(DEMO_TEMPLATES)),
    properties=json_objects(unstorable=True),
    traits=json_objects(unstorable=True),
    user_id=texts(unstorable=True),
)
@example("Cart recovery", {"value": 10**400, "products": [{"price": "1e309", "quantity": -(10**400)}]}, {}, "u1")
@example("Order receipt", {"total": float("nan"), "order_id": "x" * 5000}, {"first_name": "\x00"}, "u1")
@example("Cart recovery", {"products": 5}, {"first_name": ["a"]}, "u1")  # a number where a list is expected
def test_the_demo_templates_render_or_report_a_template_error(name, properties, traits, user_id):
    result = render(DEMO_TEMPLATES[name], properties, traits, user_id)
    if isinstance(result, RenderError):
        assert result.part in ("subject", "text body", "HTML body") and str(result)
        return
    assert isinstance(result, RenderedEmail)
    # A subject is one header line, whatever the properties held.
    assert "\n" not in result.subject and "\r" not in result.subject
