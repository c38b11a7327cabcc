"""Email templates: Django-template subject and bodies, or a SendGrid dynamic template."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from campaigns.admin.history import HistoryAdmin
from campaigns.authoring.forms import TemplateForm
from campaigns.authoring.history import TEMPLATE
from campaigns.authoring.translation_forms import TemplateTranslationForm
from campaigns.models import Template, TemplateTranslation


class TemplateTranslationInline(admin.StackedInline):
    model = TemplateTranslation
    form = TemplateTranslationForm
    extra = 0
    verbose_name = "translation"
    verbose_name_plural = "translations (a contact's locale picks one: pt-BR, else pt, else the content above)"


@admin.register(Template)
class TemplateAdmin(HistoryAdmin):
    history_kind = TEMPLATE
    form = TemplateForm
    inlines = [TemplateTranslationInline]
    list_display = ["name", "category", "topic", "kind", "languages", "subject", "rule_count", "updated_at"]
    list_filter = ["category", "topic"]
    search_fields = ["name", "subject", "sendgrid_template_id"]
    readonly_fields = ["updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "category", "topic", "from_email"]}),
        (
            "Content",
            {
                "fields": ["subject", "text_body", "html_body"],
                "description": "Django template syntax: {{ event.&lt;property&gt; }} and "
                "{{ contact.&lt;trait&gt; }}, e.g. {{ contact.first_name|default:'there' }}.",
            },
        ),
        (
            "Or a SendGrid dynamic template",
            {
                "fields": ["sendgrid_template_id"],
                "description": "When set, SendGrid renders the email from its own template with the same "
                "event and contact data; the subject and bodies above are not used.",
            },
        ),
        (None, {"fields": ["updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Template]:
        return super().get_queryset(request).annotate(rule_count=Count("rules")).prefetch_related("translations")

    @admin.display(description="Translations")
    def languages(self, template: Template) -> str:
        return ", ".join(t.locale for t in template.translations.all()) or "—"

    @admin.display(description="Kind")
    def kind(self, template: Template) -> str:
        return "SendGrid" if template.sendgrid_template_id else "Django"

    @admin.display(description="Rules", ordering="rule_count")
    def rule_count(self, template: Template) -> int:
        return int(getattr(template, "rule_count", 0))
