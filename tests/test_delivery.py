"""Delivery through Anymail's real SendGrid backend to the local SendGrid-compatible server."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from campaigns.consent.tokens import consent_token_check
from campaigns.models import Category, IdempotencyKey, Send
from events.models import Contact
from tests import baker_recipes
from tests.conftest import identify, run_worker, track
from tests.steps import events_process_pending, send_deliver
from tests.world import rule_make, send_states, template_make


def welcome_posted(api, **template_fields):
    template = template_make("Welcome", **template_fields)
    rule = rule_make("welcome", "user_signup", template=template)
    api.batch([identify("u1", "u1@example.com", first_name="Ann"), track("user_signup", "u1", plan="Pro <b>")])
    return rule


def test_it_sends_with_the_key_in_custom_args_and_keeps_sendgrids_message_id(api, sendgrid):
    welcome_posted(api)
    run_worker()
    [message] = sendgrid.accepted
    send = Send.objects.get()
    assert message.key == send.dedupe_key == f"r:{send.rule_id}:e:{send.event_id}"
    assert message.custom_args["triggermail_send"] == str(send.pk)
    assert (send.state, send.provider_message_id, send.to_email) == ("sent", message.message_id, "u1@example.com")
    assert send.sent_at is not None and send.attempts == 1
    assert IdempotencyKey.objects.get().key == send.dedupe_key


def test_it_renders_subject_and_bodies_from_event_properties_and_contact_traits(api, sendgrid):
    welcome_posted(
        api,
        subject="Welcome {{ contact.first_name }},\n your {{ event.plan }} plan",
        text_body="Hi {{ contact.first_name }}, plan {{ event.plan }} for {{ contact.email }}",
        html_body="<p>Plan {{ event.plan }}</p>",
    )
    run_worker()
    [message] = sendgrid.accepted
    assert message.subject == "Welcome Ann, your Pro <b> plan"
    assert message.content("text/plain") == "Hi Ann, plan Pro <b> for u1@example.com"
    assert message.content("text/html") == "<p>Plan Pro &lt;b&gt;</p>"


def test_the_templates_category_and_the_rule_are_sendgrid_categories(api, sendgrid):
    welcome_posted(api, category=Category.TRANSACTIONAL)
    run_worker()
    assert sendgrid.accepted[0].payload["categories"] == ["transactional", "welcome"]


def test_a_dynamic_template_gets_the_merge_data(api, sendgrid):
    welcome_posted(api, sendgrid_template_id="d-123abc", subject="", text_body="")
    run_worker()
    [message] = sendgrid.accepted
    assert message.payload["template_id"] == "d-123abc"
    data = message.payload["personalizations"][0]["dynamic_template_data"]
    assert data["event"] == {"plan": "Pro <b>"}
    assert (data["contact"]["first_name"], data["contact"]["email"]) == ("Ann", "u1@example.com")
    # The links a dynamic template may use arrive made, as text (the message builds them on demand).
    token = data["unsubscribe_url"].removeprefix(settings.SITE_URL + "/u/").removesuffix("/")
    assert consent_token_check(token, now=timezone.now()).contact == Contact.objects.get(user_id="u1")
    assert data["preferences_url"] == data["unsubscribe_url"]


def test_a_template_syntax_error_fails_the_send_and_names_the_line(api, sendgrid):
    welcome_posted(api, text_body="Hello\n{% if contact.first_name %}\nno end")
    run_worker()
    send = Send.objects.get()
    assert send.state == "failed"
    assert "text body, line 2" in send.reason
    assert "endif" in send.last_error
    assert sendgrid.requests == 0


def test_a_template_error_at_render_time_fails_the_send_too(api, sendgrid):
    welcome_posted(api, text_body='{% include "missing.txt" %}')
    run_worker()
    send = Send.objects.get()
    assert send.state == "failed"
    assert send.reason == "template error in text body: TemplateDoesNotExist: missing.txt"
    assert sendgrid.requests == 0


def test_a_key_already_used_cancels_the_send_without_calling_the_provider(api, sendgrid):
    welcome_posted(api)
    events_process_pending()
    send = Send.objects.get()
    # Another send already took this key (e.g. a second row for the same dedupe key).
    baker_recipes.idempotency_key.make(key=send.dedupe_key)
    run_worker()
    send.refresh_from_db()
    assert (send.state, send.reason) == ("cancelled", f"duplicate: key {send.dedupe_key} was already used")
    assert sendgrid.requests == 0


def test_delivering_a_send_twice_calls_the_provider_once(api, sendgrid):
    welcome_posted(api)
    events_process_pending()
    send = Send.objects.get()
    assert send_deliver(send.pk) == "accepted"
    assert send_deliver(send.pk) == "not_claimed"
    assert sendgrid.requests == 1
    assert send_states() == [("welcome", "sent")]


def test_a_send_not_yet_due_is_not_delivered(api, sendgrid):
    rule_make("nudge", "user_signup", delay=timedelta(hours=1))
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    run_worker()
    assert send_deliver(Send.objects.get().pk) == "not_claimed"
    assert sendgrid.requests == 0
