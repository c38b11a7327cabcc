"""The form of a template translation: a language tag and a complete email in that language.

Held to the template's own rules (campaigns.authoring.forms): the subject and bodies must compile,
a SendGrid id starts with d-, and a translation says something — a subject and a body, or a SendGrid
template id. The tag is normalized (`pt_br` → `pt-BR`), so one language cannot be entered twice.
"""

from __future__ import annotations

from typing import Any

from django import forms

from campaigns.authoring.form_fields import locale_clean
from campaigns.authoring.forms import sendgrid_id_clean, template_content_clean
from campaigns.models import TemplateTranslation


class TemplateTranslationForm(forms.ModelForm):
    class Meta:
        model = TemplateTranslation
        fields = ["locale", "subject", "text_body", "html_body", "sendgrid_template_id"]
        labels = {"html_body": "HTML body", "sendgrid_template_id": "SendGrid template id"}
        widgets = {
            "locale": forms.TextInput(attrs={"size": 12, "placeholder": "fr, pt-BR"}),
            "subject": forms.TextInput(attrs={"size": 80}),
            "text_body": forms.Textarea(attrs={"rows": 6, "cols": 100, "class": "vLargeTextField"}),
            "html_body": forms.Textarea(attrs={"rows": 8, "cols": 100, "class": "vLargeTextField"}),
        }

    def clean_locale(self) -> str:
        # The field is required, so Django has refused an empty tag before this runs.
        return locale_clean(str(self.cleaned_data.get("locale") or ""))

    def clean_sendgrid_template_id(self) -> str:
        return sendgrid_id_clean(self.cleaned_data.get("sendgrid_template_id"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        template_content_clean(self, cleaned, whom="this language ")
        return cleaned
