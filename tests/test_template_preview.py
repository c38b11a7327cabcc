"""The template preview page: a recent event or a JSON sample, unsaved edits, errors with their
line, SendGrid dynamic templates, and the test email through the real SendGrid backend."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from campaigns.models import IdempotencyKey, Send, Template
from events.models import Event
from harness.sendgrid_server import Fault
from tests import baker_recipes


def directives(policy: str) -> dict[str, str]:
    """A Content-Security-Policy header as {directive: its sources}."""
    pairs = (part.strip().partition(" ") for part in policy.split(";") if part.strip())
    return {name: sources for name, _, sources in pairs}


@pytest.fixture
def template(db: None) -> Template:
    return baker_recipes.template.make(
        name="Recovery",
        subject="Your cart, {{ contact.first_name|default:'there' }}",
        text_body="You left a {{ event.product }}.",
        html_body="<style>body{color:red}</style><p>A {{ event.product }} for {{ contact.first_name }}</p>",
    )


@pytest.fixture
def lamp_event(db: None) -> Event:
    baker_recipes.contact.make(user_id="u-ann", email="ann@example.com", traits={"first_name": "Ann"})
    now = timezone.now()
    baker_recipes.track_event.make(
        name="signed_up",
        user_id="u-bob",
        occurred_at=now - timedelta(days=1),
        received_at=now,
    )
    return baker_recipes.track_event.make(
        name="cart_abandoned",
        user_id="u-ann",
        properties={"product": "Lamp & Co"},
        occurred_at=now,
        received_at=now,
    )


def url(template: Template) -> str:
    return f"/admin/campaigns/template/{template.pk}/preview/"


def form_data(template: Template, sample: dict[str, Any], **fields: str) -> dict[str, str]:
    data = {
        "event": "",
        "sample": json.dumps(sample),
        "subject": template.subject,
        "text_body": template.text_body,
        "html_body": template.html_body,
        "sendgrid_template_id": template.sendgrid_template_id,
        "to": "",
        "_preview": "Preview",
    }
    return {**data, **fields}


def test_it_renders_the_template_for_a_chosen_recent_event_with_its_contact(admin_client, template, lamp_event):
    page = admin_client.get(url(template), {"event": lamp_event.pk}).content.decode()

    assert 'id="preview-subject">Your cart, Ann<' in page
    assert "You left a Lamp &amp; Co." in page  # the text body, escaped only by the admin page
    # The HTML body sits in a sandboxed frame, so its <style> stays inside it.
    [frame] = re.findall(r'<iframe id="preview-html" title="HTML body" sandbox src="([^"]+)"', page)
    assert admin_client.get(frame).content.decode().startswith("<style>body{color:red}")
    # The recent events are offered with name, user and time, and the sample shows the chosen one.
    assert "cart_abandoned · u-ann · " in page and "signed_up · u-bob · " in page
    assert "ann@example.com" in page


def test_a_first_look_uses_the_latest_event_a_rule_with_the_template_listens_to(admin_client, template, lamp_event):
    page = admin_client.get(url(template)).content.decode()

    assert "Your cart, Ann" in page


def test_use_this_event_fills_the_sample_from_it(admin_client, template, lamp_event):
    data = form_data(template, {"event": {}, "contact": {}}, event=str(lamp_event.pk), _load="Use this event")
    del data["_preview"]

    page = admin_client.post(url(template), data).content.decode()

    assert "Your cart, Ann" in page and "Lamp &amp; Co" in page


def test_a_first_look_at_a_template_saved_with_a_trailing_newline_is_not_called_edited(admin_client, template):
    template.html_body += "\r\n"
    template.save()
    page = admin_client.get(url(template)).content.decode()
    assert 'id="preview-edited"' not in page


def test_it_renders_a_sample_written_as_json(admin_client, template):
    sample = {"event": {"product": "Chair"}, "contact": {"first_name": "Bob", "email": "bob@example.com"}}

    page = admin_client.post(url(template), form_data(template, sample)).content.decode()

    assert 'id="preview-subject">Your cart, Bob<' in page
    assert "You left a Chair." in page


def test_bad_sample_json_is_an_error_on_the_sample(admin_client, template):
    data = {**form_data(template, {}), "sample": '{"event": '}

    response = admin_client.post(url(template), data)

    assert response.status_code == 200
    assert "The sample is not valid JSON" in response.content.decode()


def test_unsaved_edits_posted_from_the_change_form_are_previewed(admin_client, template, lamp_event):
    change_page = admin_client.get(f"/admin/campaigns/template/{template.pk}/change/").content.decode()
    assert 'id="template-preview-link"' in change_page and "Preview unsaved edits" in change_page

    # The change form posts its own fields (no sample) to the preview page.
    edited = {"name": "Recovery", "subject": "Still thinking, {{ contact.first_name }}?", "text_body": "x"}
    page = admin_client.post(url(template), {**edited, "html_body": "", "_preview_edits": "1"}).content.decode()

    assert "Still thinking, Ann?" in page
    assert 'id="preview-edited"' in page
    assert Template.objects.get(pk=template.pk).subject.startswith("Your cart")


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"subject": "{{ event.product|nosuchfilter }}"}, "Template error in the subject, line 1: Invalid filter"),
        ({"text_body": "a\nb\n{% for x in %}"}, "Template error in the text body, line 3:"),
        ({"html_body": "<p>\n{% endif %}"}, "Template error in the HTML body, line 2:"),
    ],
)
def test_a_template_error_names_the_part_and_the_line(admin_client, template, fields, where):
    response = admin_client.post(url(template), form_data(template, {"event": {"product": "Lamp"}}, **fields))

    assert response.status_code == 200
    assert where in response.content.decode()


def test_a_sendgrid_dynamic_template_shows_the_data_sendgrid_would_get(admin_client, template):
    template.sendgrid_template_id = "d-123"
    template.save()
    sample = {"event": {"product": "Lamp"}, "contact": {"email": "ann@example.com", "first_name": "Ann"}}

    page = admin_client.post(url(template), form_data(template, sample)).content.decode()

    assert "dynamic_template_data" in page and "d-123" in page
    assert "&quot;product&quot;: &quot;Lamp&quot;" in page
    assert "&quot;first_name&quot;: &quot;Ann&quot;" in page


def test_the_test_email_goes_out_once_through_sendgrid(admin_client, template, lamp_event, sendgrid):
    data = form_data(template, {}, event=str(lamp_event.pk), _send="Send test email", to="me@example.com")
    data["sample"] = admin_client.get(url(template), {"event": lamp_event.pk}).context["form"]["sample"].value()

    page = admin_client.post(url(template), data).content.decode()

    assert "Test email sent to me@example.com: the email provider accepted it" in page
    [message] = sendgrid.accepted
    assert message.to == ["me@example.com"]
    assert message.subject == "[Test] Your cart, Ann"
    assert "You left a Lamp & Co." in message.content("text/plain")
    # Not a campaign email: no key, no send row, no unsubscribe header for someone else's contact.
    assert message.key == "" and "List-Unsubscribe" not in message.headers
    assert Send.objects.count() == 0 and IdempotencyKey.objects.count() == 0


def test_the_test_email_sends_unsaved_edits(admin_client, template, sendgrid):
    data = form_data(template, {"event": {"product": "Vase"}}, subject="New: {{ event.product }}", to="me@example.com")

    admin_client.post(url(template), {**data, "_send": "Send test email"})

    assert [m.subject for m in sendgrid.accepted] == ["[Test] New: Vase"]


def test_an_invalid_address_sends_nothing(admin_client, template, sendgrid):
    data = form_data(template, {}, to="not-an-address", _send="Send test email")

    page = admin_client.post(url(template), data).content.decode()

    assert "Enter a valid email address." in page
    assert sendgrid.accepted == []


def test_a_provider_refusal_is_shown(admin_client, template, sendgrid):
    sendgrid.fail_next(Fault(kind="status", status=400))
    data = form_data(template, {}, to="me@example.com", _send="Send test email")

    page = admin_client.post(url(template), data).content.decode()

    assert "The test email to me@example.com was not sent:" in page
    assert "400" in page
    assert sendgrid.accepted == []


def test_a_broken_template_is_not_sent(admin_client, template, sendgrid):
    data = form_data(template, {}, text_body="{% if %}", to="me@example.com", _send="Send test email")

    page = admin_client.post(url(template), data).content.decode()

    assert "Template error in the text body, line 1" in page
    assert sendgrid.accepted == []


def staff(*permissions: str) -> Client:
    user = User.objects.create_user("marketer", password="pw", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="campaigns"))
    client = Client()
    client.force_login(user)
    return client


def test_it_asks_for_a_login(client, template):
    response = client.get(url(template))

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_without_view_template_are_refused(template):
    assert staff().get(url(template)).status_code == 403


def test_staff_who_may_only_view_templates_may_preview_but_not_send(template, sendgrid):
    client = staff("view_template")
    assert client.get(url(template)).status_code == 200

    data = form_data(template, {}, to="me@example.com", _send="Send test email")

    assert client.post(url(template), data).status_code == 403
    assert sendgrid.accepted == []


def test_event_data_cannot_inject_markup_into_the_admin_page(admin_client, template):
    sample = {"event": {"product": '"><script>alert(1)</script>'}, "contact": {}}

    page = admin_client.post(url(template), form_data(template, sample)).content.decode()

    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)" in page


def test_the_email_html_frame_has_a_policy_for_mail_not_the_admins(admin_client, template, lamp_event):
    page = admin_client.get(url(template), {"event": lamp_event.pk}).content.decode()
    [frame] = re.findall(r'id="preview-html" title="HTML body" sandbox src="([^"]+)"', page)

    answer = admin_client.get(frame)

    # Email HTML is mail: its inline styles and remote images show as a mail client shows them, no
    # script ever runs, and the frame is an origin of its own that only this site may frame.
    policy = directives(answer["Content-Security-Policy"])
    assert "'unsafe-inline'" in policy["style-src"] and "*" in policy["img-src"]
    assert policy["default-src"] == "'none'" and "script-src" not in policy
    assert "sandbox" in policy and policy["frame-ancestors"] == "'self'"
    assert answer["X-Frame-Options"] == "SAMEORIGIN"
    # The Admin page around it keeps the strict policy.
    admin_policy = admin_client.get(url(template))["Content-Security-Policy"]
    assert "script-src 'self'" in admin_policy and "unsafe-inline" not in admin_policy


def test_a_preview_frame_is_only_for_the_session_that_previewed_it(admin_client, client, template, lamp_event):
    page = admin_client.get(url(template), {"event": lamp_event.pk}).content.decode()
    [frame] = re.findall(r'id="preview-html" title="HTML body" sandbox src="([^"]+)"', page)
    client.force_login(User.objects.create_superuser("other-admin", "other@example.com", "x"))
    assert client.get(frame).status_code == 404
    assert admin_client.get(frame.replace("/frame/", "/frame/x")).status_code == 404
