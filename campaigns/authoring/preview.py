"""Template preview and the test email: a template rendered for a sample event and contact.

The sample is either a recent real event (with its user's stored contact) or JSON a marketer
writes, `{"event": {...properties}, "contact": {...traits, "email": ...}}`. Rendering and message
building are the production ones (campaigns.authoring.rendering, campaigns.sending.message.message_compose), so what
the preview shows is what a contact would get. Nothing here writes to the database.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.urls import reverse

from campaigns.authoring.rendering import RenderError, render_context, template_render
from campaigns.authoring.safe_links import template_link_warnings
from campaigns.models import Rule, Template
from campaigns.sending.message import message_compose
from campaigns.sending.provider import ProviderResult, provider_send
from events.models import Contact, Event
from triggermail.times import time_text

RECENT_EVENTS = 20
TEST_SUBJECT_PREFIX = "[Test] "
# Sent as a SendGrid category, so that test emails can be told apart in SendGrid's own statistics.
TEST_TAG = "test"
# The sample's user id when the sample JSON names none.
SAMPLE_USER_ID = "preview-user"


class SampleError(ValueError):
    """The sample JSON cannot be used; the message says why, for the marketer."""


@dataclass(frozen=True)
class Sample:
    properties: dict[str, Any] = field(default_factory=dict)
    user_id: str = SAMPLE_USER_ID
    email: str = ""
    traits: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> str:
        contact = {**self.traits, "email": self.email, "user_id": self.user_id}
        return json.dumps({"event": self.properties, "contact": contact}, indent=2, sort_keys=True, default=str)

    def context(self) -> dict[str, Any]:
        # The links point to a page that refuses them: a real token would let whoever receives a
        # test email unsubscribe the sample's contact, who never asked for it.
        dummy = settings.SITE_URL + reverse("consent-unsubscribe", args=["test-email"])
        return render_context(
            properties=self.properties,
            user_id=self.user_id,
            email=self.email,
            traits=self.traits,
            unsubscribe_url=dummy,
            preferences_url=dummy,
        )


def events_recent(*, limit: int = RECENT_EVENTS) -> list[Event]:
    """The latest track events (the ones rules listen to), newest first."""
    return list(Event.objects.filter(type=Event.Type.TRACK).order_by("-occurred_at", "-id")[:limit])


def event_label(event: Event) -> str:
    return f"{event.name} · {event.user_id} · {time_text(event.occurred_at)}"


def sample_from_event(event: Event) -> Sample:
    """The event's properties with its user's contact as stored now (the contact a send would use)."""
    contact = Contact.objects.filter(user_id=event.user_id).first()
    return Sample(
        properties=dict(event.properties or {}),
        user_id=event.user_id,
        email=contact.email if contact is not None else "",
        traits=dict(contact.traits or {}) if contact is not None else {},
    )


def sample_event_default(template: Template) -> Event | None:
    """The latest event a rule sending this template listens to, else the latest track event."""
    names = Rule.objects.filter(template=template).values_list("trigger_event", flat=True)
    track = Event.objects.filter(type=Event.Type.TRACK).order_by("-occurred_at", "-id")
    return track.filter(name__in=list(names)).first() or track.first()


def sample_parse(text: str) -> Sample:
    """The sample a marketer wrote as JSON; SampleError names what is wrong with it."""
    try:
        data = json.loads(text or "{}")
    except ValueError as exc:
        raise SampleError(f"The sample is not valid JSON: {exc}.") from None
    if not isinstance(data, dict) or not set(data) <= {"event", "contact"}:
        raise SampleError('Write the sample as {"event": {…properties}, "contact": {…traits, "email": …}}.')
    properties, contact = data.get("event") or {}, data.get("contact") or {}
    if not isinstance(properties, dict) or not isinstance(contact, dict):
        raise SampleError('"event" and "contact" must both be JSON objects.')
    traits = {k: v for k, v in contact.items() if k not in ("email", "user_id")}
    return Sample(
        properties=properties,
        user_id=str(contact.get("user_id") or SAMPLE_USER_ID),
        email=str(contact.get("email") or ""),
        traits=traits,
    )


def template_with_edits(template: Template, edits: Mapping[str, str]) -> Template:
    """A copy of the template with the edited subject and bodies, to preview before saving (never saved)."""
    edited = copy.copy(template)
    for name in {"subject", "text_body", "html_body", "sendgrid_template_id"} & set(edits):
        setattr(edited, name, source_normalize(str(edits[name])))
    return edited


def source_normalize(text: str) -> str:
    """Template source as the change form would save it: browsers post CRLF, and form fields strip."""
    return text.replace("\r\n", "\n").strip()


@dataclass(frozen=True)
class Preview:
    subject: str = ""
    text: str = ""
    html: str = ""
    # For a SendGrid dynamic template: the data SendGrid would receive, since it renders the email.
    dynamic_data: dict[str, Any] | None = None
    error: RenderError | None = None
    # Links built from data, and links this sample lost to the safe-link pass (campaigns.authoring.safe_links).
    link_warnings: list[str] = field(default_factory=list)

    @property
    def error_text(self) -> str:
        # Without the "part, line N: " prefix, which the page shows on its own.
        return str(self.error).split(": ", 1)[-1] if self.error is not None else ""

    @property
    def dynamic_json(self) -> str:
        return json.dumps(self.dynamic_data, indent=2, sort_keys=True, default=str)


DYNAMIC_LINK_WARNING = (
    "SendGrid renders this email from its dynamic template, so TriggerMail cannot check its links: "
    "a link made from event data there can carry any scheme. Put a fixed https:// before such data."
)


def template_preview(template: Template, sample: Sample) -> Preview:
    context = sample.context()
    if template.sendgrid_template_id:
        return Preview(dynamic_data=context, link_warnings=[DYNAMIC_LINK_WARNING])
    warnings = template_link_warnings(template.html_body)
    try:
        rendered = template_render(template, context)
    except RenderError as exc:
        return Preview(error=exc, link_warnings=warnings)
    warnings += [f"In this sample, the unsafe link {link} was removed." for link in rendered.removed_links]
    # Django marks what it renders as safe HTML. Here it is data shown inside the admin page, where
    # event properties (sent by anyone with a write key) must be escaped, so it goes on as plain str.
    return Preview(
        subject=str.__str__(rendered.subject),
        text=str.__str__(rendered.text),
        html=str.__str__(rendered.html),
        link_warnings=warnings,
    )


def preview_email_send(template: Template, sample: Sample, *, to: str) -> ProviderResult:
    """Send the rendered template once to `to`, through the configured provider, as a test.

    No Send row, no idempotency key and no key in the metadata: a test is not a campaign email, is
    not counted anywhere and webhook events about it match no send. It carries no List-Unsubscribe
    header, because the recipient is not the sample's contact and must not be able to unsubscribe
    them. Raises RenderError for a broken template.
    """
    message = message_compose(template, sample.context(), to=to, subject_prefix=TEST_SUBJECT_PREFIX)
    message.tags = [TEST_TAG]
    return provider_send(message)
