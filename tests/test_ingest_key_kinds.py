"""Browser write keys are public: their messages are stored and matched, but never change a
contact, so a visitor holding the key cannot re-point anyone's email."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from events.key_kinds import BROWSER_TRAITS_REASON
from events.models import Contact, Event, WriteKey
from tests.conftest import Api, identify, run_worker, track
from tests.world import rule_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(client: Client) -> Api:
    _, raw = WriteKey.issue(name="backend")
    return Api(client, raw)


@pytest.fixture
def browser(client: Client) -> Api:
    _, raw = WriteKey.issue(name="web page", kind=WriteKey.Kind.BROWSER)
    return Api(client, raw)


def analytics_js(api: Api, body: dict[str, Any], path: str = "/v1/batch") -> Any:
    # analytics.js posts JSON as text/plain, to stay clear of CORS preflights.
    return api.post(path, body, content_type="text/plain")


def test_a_browser_key_cannot_re_point_a_contact_s_email(server, browser, sendgrid):
    rule_make("Receipt", "order_completed")
    server.batch([identify("u1", "u1@example.com", message_id="id-1")])

    answer = analytics_js(browser, {"batch": [identify("u1", "attacker@evil.example", message_id="id-2")]})
    browser.batch([track("order_completed", "u1", message_id="o-1")])
    run_worker()

    assert answer.status_code == 200
    assert answer.json() == {
        "success": True,
        "warnings": [{"index": 0, "messageId": "id-2", "field": "traits", "reason": BROWSER_TRAITS_REASON}],
    }
    assert Contact.objects.get(user_id="u1").email == "u1@example.com"
    # The browser's track call still triggers the rule, to the address the server set.
    assert [m.to for m in sendgrid.accepted] == [["u1@example.com"]]


def test_a_browser_key_s_context_traits_change_no_trait_a_rule_reads(server, browser):
    server.batch([identify("u1", "u1@example.com", message_id="id-1", plan="free")])
    message = {
        **track("page_viewed", "u1", message_id="t-1"),
        "context": {"traits": {"plan": "enterprise", "email": "x@evil.example"}, "timezone": "Pacific/Kiritimati"},
    }

    answer = analytics_js(browser, message, path="/v1/track")

    assert answer.json()["warnings"][0]["field"] == "context.traits"
    contact = Contact.objects.get(user_id="u1")
    assert (contact.email, contact.traits["plan"], contact.timezone) == ("u1@example.com", "free", "")
    # Stored as sent, for the record, but with no traits that could pass for the person's.
    event = Event.objects.get(message_id="t-1")
    assert event.traits == {}
    assert event.context["traits"]["plan"] == "enterprise"


def test_a_browser_key_creates_no_contact_for_an_unknown_user(browser):
    answer = analytics_js(browser, {"batch": [identify("stranger", "stranger@evil.example", message_id="id-1")]})

    assert answer.status_code == 200
    assert not Contact.objects.filter(user_id="stranger").exists()
    assert Event.objects.filter(message_id="id-1", type="identify").exists()


def test_a_browser_key_s_track_and_page_calls_are_stored_without_warnings(browser):
    page = {"type": "page", "name": "Pricing", "anonymousId": "a-1", "messageId": "p-1"}
    answer = analytics_js(browser, {"batch": [track("cart_viewed", "a-1", message_id="t-1", sku="X"), page]})

    assert answer.json() == {"success": True}
    assert Event.objects.get(message_id="t-1").properties == {"sku": "X"}
    assert Event.objects.filter(message_id="p-1", type="page").exists()


def test_a_server_key_still_sets_email_and_traits(server):
    assert server.batch([identify("u1", "u1@example.com", message_id="id-1", plan="pro")]).json() == {"success": True}

    contact = Contact.objects.get(user_id="u1")
    assert (contact.email, contact.traits) == ("u1@example.com", {"email": "u1@example.com", "plan": "pro"})


def test_the_admin_chooses_the_kind_when_a_key_is_created_and_shows_it_in_the_list(admin_client):
    admin_client.post("/admin/events/writekey/add/", {"name": "storefront", "kind": "browser"})
    key = WriteKey.objects.get(name="storefront")
    assert key.kind == WriteKey.Kind.BROWSER

    # Not changeable afterwards: the change form shows it read-only and ignores a posted kind.
    admin_client.post(f"/admin/events/writekey/{key.pk}/change/", {"name": "storefront", "kind": "server"})
    key.refresh_from_db()
    assert key.kind == WriteKey.Kind.BROWSER
    listing = admin_client.get("/admin/events/writekey/").content.decode()
    assert "Browser (public; cannot change contacts)" in listing
