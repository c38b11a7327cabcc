"""The template preview page: the template rendered for a sample, and the test email.

Reached from the template's change page: "Preview" (the saved template) or "Preview unsaved edits"
(the change form posted here as it is). The page's own form carries the template's subject and
bodies too, so edits can be tried here and sent as a test before anyone saves them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from campaigns.admin.preview_frame import preview_frame_store
from campaigns.authoring.form_fields import locale_clean
from campaigns.authoring.localized import template_localized
from campaigns.authoring.preview import (
    Sample,
    preview_email_send,
    sample_event_default,
    sample_from_event,
    source_normalize,
    template_preview,
    template_with_edits,
)
from campaigns.authoring.preview_forms import PreviewForm, event_chosen, preview_data
from campaigns.authoring.rendering import RenderError
from campaigns.matching.locales import DEFAULT_WORDS
from campaigns.models import Template
from campaigns.sending.provider import ProviderOutcome, ProviderResult

SOURCE_FIELDS = ("subject", "text_body", "html_body", "sendgrid_template_id")


def template_preview_view(request: HttpRequest, template_id: int) -> HttpResponse:
    if not request.user.has_perm("campaigns.view_template"):
        raise PermissionDenied
    stored = get_object_or_404(Template, pk=template_id)
    # The saved template in the language asked for: what the source fields start from and are compared with.
    locale = _locale_asked(request)
    saved, shown = template_localized(stored, locale)
    if request.method == "POST" and "sample" in request.POST:
        data = preview_data(request.POST, load="_load" in request.POST)
        if "_language" in request.POST:
            # Another language was asked for: its saved content replaces what the fields held.
            for field in SOURCE_FIELDS:
                data[field] = getattr(saved, field)
        form = PreviewForm(data)
    else:
        form = PreviewForm({**_first_data(request, saved), "locale": locale})
    template, preview = saved, None
    if form.is_valid():
        template = template_with_edits(saved, form.edits())
        preview = template_preview(template, form.cleaned_data["sample"])
        if "_send" in request.POST:
            _test_send(request, form, template)
    context = {
        **admin.site.each_context(request),
        "title": f"Preview: {saved.name}",
        "opts": Template._meta,
        "original": saved,
        "locales": [t.locale for t in stored.translations.all()],
        "language": _language_words(locale, shown),
        "form": form,
        "source_fields": [form[field] for field in SOURCE_FIELDS],
        "preview": preview,
        # Compared as the form would save them, so an untouched template is not "edited".
        "edited": any(getattr(template, f) != source_normalize(getattr(saved, f)) for f in SOURCE_FIELDS),
        "dynamic_template": template.sendgrid_template_id,
        "can_send": request.user.has_perm("campaigns.change_template"),
        "frame_token": preview_frame_store(request, preview.html) if preview and preview.html else "",
    }
    return TemplateResponse(request, "admin/campaigns/template/preview.html", context)


def _locale_asked(request: HttpRequest) -> str:
    """The locale the page shows (posted, else in the link); one that is not a tag shows the default
    (the form then names the error)."""
    text = str(request.POST.get("locale", request.GET.get("locale", "")))
    try:
        return locale_clean(text)
    except ValidationError:
        return ""


def _language_words(locale: str, shown: str) -> str:
    if not locale:
        return f"{DEFAULT_WORDS} (no locale given)"
    return f"{shown} translation (for locale {locale})" if shown else f"{DEFAULT_WORDS} (no translation for {locale})"


def _first_data(request: HttpRequest, saved: Template) -> dict[str, Any]:
    """A first look: the saved template (or the change form's posted edits) with a recent event."""
    event = event_chosen(request.GET.get("event")) or sample_event_default(saved)
    sample = sample_from_event(event) if event is not None else Sample()
    posted = request.POST if request.method == "POST" else {}
    sources = {field: posted.get(field, getattr(saved, field)) for field in SOURCE_FIELDS}
    return {"event": event.pk if event is not None else "", "sample": sample.as_json(), **sources, "to": ""}


def _test_send(request: HttpRequest, form: PreviewForm, template: Template) -> None:
    if not request.user.has_perm("campaigns.change_template"):
        raise PermissionDenied
    to = form.cleaned_data["to"]
    if not to:
        form.add_error("to", "Type the address to send the test email to.")
        return
    try:
        result = preview_email_send(template, form.cleaned_data["sample"], to=to)
    except RenderError as exc:
        messages.error(request, f"The test email was not sent: template error in {exc}")
        return
    level, text = _result_message(result, to)
    messages.add_message(request, level, text)


def _result_message(result: ProviderResult, to: str) -> tuple[int, str]:
    if result.outcome is ProviderOutcome.ACCEPTED:
        reference = f" (message id {result.message_id})" if result.message_id else ""
        return messages.SUCCESS, f"Test email sent to {to}: the email provider accepted it{reference}."
    if result.outcome is ProviderOutcome.AMBIGUOUS:
        return (
            messages.WARNING,
            f"The test email to {to} may or may not have been sent (the provider gave no clear answer): "
            f"{result.error}. Check the inbox before sending again.",
        )
    return messages.ERROR, f"The test email to {to} was not sent: {result.error}"
