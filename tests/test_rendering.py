"""Rendering templates: plain text stays plain, HTML is escaped, errors name the part and line."""

from __future__ import annotations

import pytest

from campaigns.authoring.rendering import RenderError, render_context, template_render
from campaigns.models import Template

CONTEXT = render_context(
    properties={"product": "Tom & Jerry's <DVD>", "cart": {"value": 42}},
    user_id="u1",
    email="u1@example.com",
    traits={"first_name": "Ann", "email": "old@example.com"},
)


def rendered(**fields: str):
    return template_render(Template(name="t", **fields), CONTEXT)


def test_subject_and_text_are_not_html_escaped():
    email = rendered(subject="{{ event.product }}", text_body="{{ event.product }} for {{ contact.first_name }}")
    assert email.subject == "Tom & Jerry's <DVD>"
    assert email.text == "Tom & Jerry's <DVD> for Ann"


def test_html_is_escaped():
    assert rendered(html_body="<b>{{ event.product }}</b>").html == "<b>Tom &amp; Jerry&#x27;s &lt;DVD&gt;</b>"


def test_a_subject_is_one_line():
    assert rendered(subject="Hi\n  {{ contact.first_name }}\r\n!").subject == "Hi Ann !"


def test_nested_properties_and_the_contacts_current_address():
    assert rendered(text_body="{{ event.cart.value }} {{ contact.email }}").text == "42 u1@example.com"


def test_a_missing_value_renders_empty():
    assert rendered(subject="Hi {{ contact.last_name }}!").subject == "Hi !"


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"subject": "{{ event.product|nosuchfilter }}"}, "subject, line 1"),
        ({"text_body": "a\nb\n{% for x in %}"}, "text body, line 3"),
        ({"html_body": "<p>\n{% endif %}"}, "HTML body, line 2"),
    ],
)
def test_a_syntax_error_names_the_part_and_line(fields, where):
    with pytest.raises(RenderError) as caught:
        rendered(**fields)
    assert str(caught.value).startswith(f"{where}: ")
