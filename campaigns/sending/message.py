"""Building the email for a send, or for the admin's test of a template.

Real sends (campaigns.sending.claiming) and the admin's test email (campaigns.authoring.preview) build
their message here, so a test shows exactly what a contact would get.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from anymail.message import AnymailMessage
from django.conf import settings
from django.utils import timezone

from campaigns.authoring.localized import template_localized
from campaigns.authoring.rendering import context_data, render_context, template_render
from campaigns.consent.policy import unsubscribe_headers, unsubscribe_url
from campaigns.consent.tokens import consent_token
from campaigns.models import Category, RuleVariant, Send, Template

# The metadata keys campaigns.sending.webhooks reads back from provider events.
METADATA_KEY = "triggermail_key"
METADATA_SEND = "triggermail_send"

logger = logging.getLogger(__name__)


def send_template(send: Send) -> Template:
    """The template a send carries: its A/B variant's, else its rule's.

    A variant gone by the time the send falls due (the test was ended by promoting another, or the
    variant renamed) leaves the rule's own template, which promotion makes the winner's.
    """
    if send.variant:
        variant = RuleVariant.objects.select_related("template").filter(rule_id=send.rule_id, name=send.variant).first()
        if variant is not None and variant.template is not None:
            return variant.template
    return send.rule.template


def message_build(send: Send) -> AnymailMessage:
    contact = send.contact
    # The send's A/B variant, in the contact's language as it is now: a locale changed during the
    # delay counts.
    template, _ = template_localized(send_template(send), contact.locale)
    properties = send.event.properties if send.event is not None else {}
    now = timezone.now()

    # One token for the footer link and the headers, dated now, and made only if the email carries it
    # (marketing email's headers, a footer that links it): encrypting it was a twelfth of a claim's CPU
    # (python -m bench.claim_cpu --profile), and a receipt or a welcome email usually has no such link.
    @cache
    def token() -> str:
        return consent_token(contact, now=now)

    @cache
    def unsubscribe() -> str:
        return unsubscribe_url(contact, token=token())

    context = render_context(
        properties=properties,
        user_id=contact.user_id,
        email=contact.email,
        traits=contact.traits,
        unsubscribe_url=unsubscribe,
        # The same page (see campaigns.consent.policy.preferences_url).
        preferences_url=unsubscribe,
    )
    message = message_compose(template, context, to=contact.email)
    # Our key travels with the message (SendGrid custom_args) so that webhook events prove which
    # send they belong to.
    message.metadata = {METADATA_KEY: send.dedupe_key, METADATA_SEND: str(send.pk)}
    message.tags = [template.category, send.rule.name[:100]]
    if template.category == Category.MARKETING:
        # RFC 8058 one-click unsubscribe (Anymail passes these as SendGrid `headers`); mailbox
        # providers require it of bulk senders. Transactional email is not a list to leave.
        message.extra_headers.update(unsubscribe_headers(contact, token=token()))
    return message


def message_compose(
    template: Template, context: dict[str, Any], *, to: str, subject_prefix: str = ""
) -> AnymailMessage:
    """The email a template makes for one address: rendered here, or by SendGrid from a dynamic template.

    Shared by real sends and the admin's test email (campaigns.authoring.preview), so a test shows exactly
    what a contact would get. Raises RenderError for a broken template.
    """
    message = AnymailMessage(to=[to], from_email=template.from_email or settings.DEFAULT_FROM_EMAIL)
    if template.sendgrid_template_id:
        # SendGrid renders the subject from its own template; a prefix cannot reach it.
        message.template_id = template.sendgrid_template_id
        message.merge_global_data = context_data(context)
    else:
        rendered = template_render(template, context)
        if rendered.removed_links:
            # Worth a look: event data (or the template) tried to put a script or data URL in a link.
            logger.warning(
                "template %s: removed %d unsafe link(s) from an email: %s",
                template.pk,
                len(rendered.removed_links),
                ", ".join(f"{link.tag} {link.attribute}={link.value[:40]!r}" for link in rendered.removed_links),
            )
        message.subject = subject_prefix + rendered.subject
        message.body = rendered.text
        if rendered.html:
            message.attach_alternative(rendered.html, "text/html")
    return message
