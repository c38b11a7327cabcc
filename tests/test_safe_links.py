"""Safe links: data in an email's href/src can never make a javascript:, data: or vbscript: link.

The end-to-end case is the demo Cart recovery email with a hostile `cart_url`, delivered through
the real SendGrid backend to the local server; the rest renders templates the way sends do.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.authoring.demo import DEMO_CAMPAIGN
from campaigns.authoring.rendering import render_context, template_render
from campaigns.authoring.transfer import document_loads, rules_import
from campaigns.models import Send, Template
from tests import baker_recipes
from tests.conftest import identify, later, run_worker, track
from tests.test_template_preview import form_data, url

# What an attacker would put in cart_url: schemes in any case, with tabs, newlines, control
# characters and spaces that browsers skip, and character references that they decode.
HOSTILE = [
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(1)",
    "JaVa\tscript:alert(1)",
    "java\nscript:alert(1)",
    "java\rscript:alert(1)",
    "   javascript:alert(1)",
    "\x01\x02javascript:alert(1)",
    "java\x00script:alert(1)",
    "javascript\t:alert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;avascript:alert(1)",
    "&#106avascript:alert(1)",
    "javascript&colon;alert(1)",
    "&Tab;javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:image/svg+xml,<svg onload=alert(1)>",
    "vbscript:msgbox(1)",
    "VBScript:msgbox(1)",
    "file:///etc/passwd",
    "ms-msdt:/id PCWDiagnostic",
]
SAFE = ["https://shop.example.com/cart?id=7&x=1", "http://x.example/", "mailto:help@example.com", "/cart", "#top", ""]


class _Attributes(HTMLParser):
    """Every attribute as a mail client reads it (names lower-cased, character references decoded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [(tag, name, value) for name, value in attrs]


def attributes(text: str) -> list[tuple[str, str, str | None]]:
    parser = _Attributes()
    parser.feed(text)
    parser.close()
    return parser.found


def no_script_url(text: str) -> bool:
    """No attribute value anywhere that, without the characters browsers skip, starts with a bad scheme."""
    for _, _, value in attributes(text):
        squeezed = re.sub(r"[\x00-\x20\x7f]", "", value or "").lower()
        if squeezed.startswith(("javascript:", "data:", "vbscript:", "file:", "ms-msdt:")):
            return False
    return True


def render_html(source: str, **properties: object) -> str:
    template = Template(subject="s", text_body="", html_body=source)
    context = render_context(properties=properties, user_id="u1", email="u1@example.com", traits={})
    return template_render(template, context).html


def test_the_demo_cart_recovery_link_from_a_hostile_event_reaches_nobody(api, sendgrid):
    rules_import(document_loads(DEMO_CAMPAIGN.read_text(encoding="utf-8")))
    hostile = "javascript:alert(document.cookie)"
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1", value=30, cart_url=hostile)])

    run_worker(at=later(minutes=61))

    [message] = sendgrid.accepted
    body = message.content("text/html")
    assert "javascript:" not in html.unescape(body).lower()
    assert no_script_url(body)
    # The email still goes out and still says what it is for; the button just leads nowhere.
    assert "Return to your cart</a>" in body
    assert Send.objects.get(rule__name="Cart recovery").state == "sent"


def test_the_demo_cart_recovery_link_from_a_normal_event_is_kept(api, sendgrid):
    rules_import(document_loads(DEMO_CAMPAIGN.read_text(encoding="utf-8")))
    cart = "https://shop.example.com/cart/abc?utm_source=email&x=1"
    api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1", value=30, cart_url=cart)])

    run_worker(at=later(minutes=61))

    assert f'href="{html.escape(cart)}"' in sendgrid.accepted[0].content("text/html")


@pytest.mark.parametrize("url", HOSTILE)
@pytest.mark.parametrize(
    "source",
    [
        '<a href="{{ event.url }}">go</a>',
        "<a href='{{ event.url }}'>go</a>",
        "<a href={{ event.url }}>go</a>",
        '<img src="{{ event.url }}" alt="x">',
        '<img src="{{ event.url }}"/>',
        '<table background="{{ event.url }}"><tr><td>x</td></tr></table>',
        '<form action="{{ event.url }}"><button formaction="{{ event.url }}">b</button></form>',
        '<img srcset="https://ok.example/a.png 1x, {{ event.url }} 2x">',
        '<A HREF="{{ event.url }}">go</A>',
        # A marketer's |safe lets character references through: still refused.
        '<a href="{{ event.url|safe }}">go</a>',
        '<p>\n  <a\n   class="b"\n   href="{{ event.url|safe }}">go</a>\n</p>',
    ],
)
def test_an_unsafe_url_in_any_url_attribute_is_removed(source, url):
    rendered = render_html(source, url=url)

    assert no_script_url(rendered), rendered
    # Nothing else of the tag is lost.
    assert (">go</" in rendered) == (">go</" in source)


@pytest.mark.parametrize("url", SAFE)
def test_a_safe_url_is_kept_and_the_document_is_unchanged(url):
    source = (
        "<!doctype html><html><head><style>a{color:red}</style></head>"
        '<body><a href="{{ event.url }}">go</a></body></html>'
    )
    expected = source.replace("{{ event.url }}", html.escape(url))
    assert render_html(source, url=url) == expected


def test_only_the_tag_with_the_unsafe_link_is_rewritten():
    source = '<p style="x">A</p>\n<a class="btn" href="{{ event.url }}" title="t">go</a>\n<img src="https://ok/i.png">'
    rendered = render_html(source, url="javascript:alert(1)")
    assert rendered == '<p style="x">A</p>\n<a class="btn" title="t">go</a>\n<img src="https://ok/i.png">'


def test_a_scheme_added_to_the_setting_is_allowed(settings):
    settings.SAFE_LINK_SCHEMES = [*settings.SAFE_LINK_SCHEMES, "myshop"]
    assert 'href="myshop://cart/7"' in render_html('<a href="{{ event.url }}">go</a>', url="myshop://cart/7")
    assert "href" not in render_html('<a href="{{ event.url }}">go</a>', url="otherapp://cart/7")


_SKIPPED = st.sampled_from(["\t", "\n", "\r", "\x00", "\x0b", "\x1f", " ", "\x7f"])


@st.composite
def disguised(draw: st.DrawFn) -> str:
    """A bad scheme with random case and characters browsers skip scattered through it."""
    scheme = draw(st.sampled_from(["javascript", "data", "vbscript"]))
    out = draw(st.lists(_SKIPPED, max_size=3))
    for char in scheme + ":":
        out.append(char.upper() if draw(st.booleans()) else char)
        out += draw(st.lists(_SKIPPED, max_size=2))
    return "".join(out) + draw(st.sampled_from(["alert(1)", "text/html,<b>x</b>", ""]))


@settings(max_examples=200, deadline=None)
@given(url=disguised(), entities=st.booleans())
def test_no_disguise_of_a_bad_scheme_survives(url, entities):
    # With references, every character is written as &#N; (only |safe lets that through).
    value = "".join(f"&#{ord(c)};" for c in url) if entities else url
    rendered = render_html('<a href="{{ event.url|safe }}">go</a>', url=value)
    assert no_script_url(rendered), rendered


# --- The preview warns -----------------------------------------------------------------------------


def preview_page(admin_client, template: Template, sample: dict) -> str:
    return admin_client.post(url(template), form_data(template, sample)).content.decode()


def test_the_preview_warns_that_a_link_comes_from_event_data(admin_client):
    template = baker_recipes.template.make(
        html_body='<a href="{{ event.cart_url }}">cart</a> <a href="https://shop.example.com/{{ event.path }}">x</a>'
    )

    page = preview_page(admin_client, template, {"event": {"cart_url": "https://shop.example.com/c"}})

    assert 'id="preview-link-warnings"' in page
    assert html.escape('The link in <a href="{{ event.cart_url }}"> comes from event data') in page
    # A link whose scheme the template fixes is not mentioned.
    assert "event.path" not in page.split('id="preview-link-warnings"')[1].split("</ul>")[0]


def test_the_preview_says_when_the_sample_lost_a_link(admin_client):
    template = baker_recipes.template.make(html_body='<a href="{{ event.cart_url }}">cart</a>')

    page = preview_page(admin_client, template, {"event": {"cart_url": "javascript:alert(1)"}})

    assert html.escape('In this sample, the unsafe link <a href="javascript:alert(1)"> was removed.') in page
    assert "javascript:alert(1)&quot;&gt;cart" not in page  # the rendered body in the frame has no such link


def test_the_preview_has_no_warnings_for_a_template_without_data_links(admin_client):
    template = baker_recipes.template.make(html_body='<a href="https://shop.example.com/">shop</a> {{ event.x }}')
    assert 'id="preview-link-warnings"' not in preview_page(admin_client, template, {"event": {"x": 1}})
