"""A template's translations: the same email in other languages (campaigns.matching.locales picks one)."""

from __future__ import annotations

from django.db import models

from campaigns.models.rules import Template


class TemplateTranslation(models.Model):
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="translations")
    locale = models.CharField(max_length=35, help_text="A language tag: en, fr, pt-BR. pt_br is read as pt-BR.")
    subject = models.CharField(max_length=255, blank=True)
    html_body = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    sendgrid_template_id = models.CharField(
        max_length=64, blank=True, help_text="A SendGrid dynamic template id (d-…) for this language."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["template", "locale"]
        constraints = [models.UniqueConstraint(fields=["template", "locale"], name="translation_once_per_locale")]

    def __str__(self) -> str:
        return f"{self.template} ({self.locale})"
