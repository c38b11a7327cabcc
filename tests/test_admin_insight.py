"""The admin answers "why did or didn't this user get that email?" from events and contacts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils.html import escape

from campaigns.admin import trace
from campaigns.models import Decision, Rule, Send
from events.models import Contact, Event
from tests import baker_recipes
from tests.conftest import identify, track
from tests.steps import events_process_pending


@pytest.fixture
def rules(db: None) -> dict[str, Rule]:
    template = baker_recipes.template.make()
    recovery = baker_recipes.rule.make(
        name="cart recovery", trigger_event="cart_abandoned", template=template, delay=timedelta(hours=1)
    )
    baker_recipes.condition.make(rule=recovery, key="cart_value", operator="gt", value=50)
    big = baker_recipes.rule.make(name="big spender", trigger_event="cart_abandoned", template=template)
    baker_recipes.condition.make(rule=big, key="cart_value", operator="gt", value=500)
    return {"recovery": recovery, "big": big}


@pytest.fixture
def ann_abandons_a_cart(api, rules) -> Event:
    """Ann abandons an 80 cart: the recovery rule schedules an email, the big spender rule skips."""
    response = api.batch(
        [identify("u-ann", "ann@example.com", plan="gold"), track("cart_abandoned", "u-ann", cart_value=80)]
    )
    assert response.status_code == 200, response.content
    events_process_pending()
    return Event.objects.get(name="cart_abandoned")


def test_the_event_page_shows_what_every_listening_rule_decided(admin_client, ann_abandons_a_cart, rules):
    event = ann_abandons_a_cart
    send = Send.objects.get()

    page = admin_client.get(f"/admin/events/event/{event.pk}/change/").content.decode()

    assert "Decision trace" in page
    assert f'/admin/campaigns/rule/{rules["recovery"].pk}/change/">cart recovery</a>' in page
    assert f'/admin/campaigns/send/{send.pk}/change/">#{send.pk} scheduled</a>' in page
    assert f'/admin/campaigns/rule/{rules["big"].pk}/change/">big spender</a>' in page
    assert "condition false" in page
    assert escape("condition not met: property cart_value > 500") in page


def test_the_event_page_pretty_prints_its_properties(admin_client, ann_abandons_a_cart):
    page = admin_client.get(f"/admin/events/event/{ann_abandons_a_cart.pk}/change/").content.decode()

    assert escape('"cart_value": 80') in page
    assert "/admin/events/contact/" in page


def test_an_unprocessed_event_says_the_rules_have_not_seen_it(admin_client, api, rules):
    api.batch([track("cart_abandoned", "u-ann", cart_value=80)])
    event = Event.objects.get()

    page = admin_client.get(f"/admin/events/event/{event.pk}/change/").content.decode()

    assert "Not processed yet: the rules have not looked at this event." in page


def test_an_event_no_rule_listens_to_says_so(admin_client, api, rules):
    api.batch([track("page_liked", "u-ann")])
    events_process_pending()

    page = admin_client.get(f"/admin/events/event/{Event.objects.get().pk}/change/").content.decode()

    assert "No rule listens to page_liked." in page


def test_the_contact_page_shows_every_decision_and_send(admin_client, api, ann_abandons_a_cart, rules):
    # A second, small cart: this time both rules skip, and the page must say why.
    api.batch([track("cart_abandoned", "u-ann", cart_value=20)])
    events_process_pending()
    contact = Contact.objects.get(user_id="u-ann")
    send = Send.objects.get()

    page = admin_client.get(f"/admin/events/contact/{contact.pk}/change/").content.decode()

    assert escape('"plan": "gold"') in page
    assert page.count("condition not met") == 3
    assert escape("condition not met: property cart_value > 50") in page
    assert page.count(f'/admin/campaigns/send/{send.pk}/change/">#{send.pk}') == 2  # decision row and sends table
    assert "ann@example.com" in page


def test_a_contact_without_history_says_so(admin_client, db):
    contact = baker_recipes.contact.make(user_id="u-new", email="new@example.com")

    page = admin_client.get(f"/admin/events/contact/{contact.pk}/change/").content.decode()

    assert "No rule has decided anything for this contact yet." in page
    assert "No email has been scheduled for this contact." in page


def test_contacts_are_found_by_user_id_or_email(admin_client, db):
    baker_recipes.contact.make(user_id="u-ann", email="ann@example.com")
    baker_recipes.contact.make(user_id="u-bob", email="bob@example.org")

    by_email = admin_client.get("/admin/events/contact/", {"q": "example.org"}).content.decode()
    by_user = admin_client.get("/admin/events/contact/", {"q": "u-ann"}).content.decode()

    assert "u-bob" in by_email and "u-ann" not in by_email
    assert "u-ann" in by_user and "u-bob" not in by_user


def test_events_are_found_by_user_and_name_and_filtered_by_processing(admin_client, api, rules):
    api.batch([track("cart_abandoned", "u-ann", cart_value=80), track("user_signup", "u-bob")])
    events_process_pending()
    api.batch([track("order_completed", "u-ann")])

    by_user = admin_client.get("/admin/events/event/", {"q": "u-bob"}).content.decode()
    by_name = admin_client.get("/admin/events/event/", {"q": "cart_abandoned"}).content.decode()
    waiting = admin_client.get("/admin/events/event/", {"processing": "pending"}).content.decode()

    assert "user_signup" in by_user and "cart_abandoned" not in by_user
    assert "u-ann" in by_name and "u-bob" not in by_name
    assert "order_completed" in waiting and "user_signup" not in waiting


def test_the_admin_is_called_triggermail(admin_client):
    page = admin_client.get("/admin/").content.decode()

    assert '<a href="/admin/">TriggerMail</a>' in page


def test_a_trace_cut_to_its_latest_rows_says_how_many_and_links_to_all(db, monkeypatch):
    monkeypatch.setattr(trace, "TRACE_LIMIT", 2)
    contact = baker_recipes.contact.make()
    sends = baker_recipes.scheduled_send.make(contact=contact, _quantity=3)
    for send in sends:
        baker_recipes.decision.make(contact=contact, rule=send.rule, send=send)
    everything = f"contact__id__exact={contact.pk}"

    sends_html = trace.send_table(Send.objects.filter(contact=contact), empty_text="none", all_query=everything)
    decisions_html = trace.decision_trace(
        Decision.objects.filter(contact=contact), show_event=True, empty_text="none", all_query=everything
    )

    assert "Showing the latest 2 of 3 sends." in sends_html
    assert f'href="/admin/campaigns/send/?{escape(everything)}">See all 3</a>' in sends_html
    assert "Showing the latest 2 of 3 decisions." in decisions_html


def test_a_trace_that_shows_every_row_says_nothing_more(db):
    contact = baker_recipes.contact.make()
    baker_recipes.scheduled_send.make(contact=contact, _quantity=2)

    html = trace.send_table(Send.objects.filter(contact=contact), empty_text="none", all_query="")

    assert "Showing the latest" not in html
    assert html.count("<tr>") >= 2
