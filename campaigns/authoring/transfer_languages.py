"""A template's translations in a campaign file (campaigns.authoring.transfer).

Written under the template as `"translations": {"fr": {"subject": …, "text_body": …, "html_body": …,
"sendgrid_template_id": …}}`, keyed by language tag and only when the template has any, so files of
templates in one language read as before. Each translation is checked by the Admin's own form.
"""

from __future__ import annotations

from typing import Any

from campaigns.authoring.form_fields import form_errors
from campaigns.authoring.localized import CONTENT_FIELDS
from campaigns.authoring.translation_forms import TemplateTranslationForm
from campaigns.models import Template, TemplateTranslation

KEY = "translations"


def translations_entry(template: Template) -> dict[str, dict[str, str]]:
    """The template's translations as the file writes them (from a prefetch when there is one)."""
    return {t.locale: {name: getattr(t, name) for name in CONTENT_FIELDS} for t in template.translations.all()}


def translations_parse(value: Any) -> dict[str, dict[str, str]]:
    """The file's translations, keyed by normalized tag; ValueError naming the language and field."""
    if not isinstance(value, dict):
        raise ValueError('must be an object keyed by language tag, e.g. {"fr": {"subject": …}}')
    parsed: dict[str, dict[str, str]] = {}
    errors: list[str] = []
    for tag, raw in value.items():
        if (
            not isinstance(raw, dict)
            or set(raw) - set(CONTENT_FIELDS)
            or not all(isinstance(v, str) for v in raw.values())
        ):
            errors.append(f"{tag}: must be an object of strings with the fields {', '.join(CONTENT_FIELDS)}")
            continue
        form = TemplateTranslationForm(data={**{name: "" for name in CONTENT_FIELDS}, **raw, "locale": tag})
        if problems := form_errors(form):
            errors += [f"{tag}: {path.lstrip('.')}: {message}" for path, message in problems]
        elif form.cleaned_data["locale"] in parsed:
            errors.append(f"{tag}: the language {form.cleaned_data['locale']} is given twice")
        else:
            # As written (like the template's own fields), only the tag normalized.
            parsed[form.cleaned_data["locale"]] = {name: raw.get(name, "") for name in CONTENT_FIELDS}
    if errors:
        raise ValueError("; ".join(errors))
    return parsed


def translations_sync(template: Template, wanted: dict[str, dict[str, str]], *, dry_run: bool) -> bool:
    """Make the template's translations the file's; whether anything changes."""
    current = translations_entry(template) if template.pk is not None else {}
    if current == wanted:
        return False
    if not dry_run:
        template.translations.all().delete()
        TemplateTranslation.objects.bulk_create(
            TemplateTranslation(template=template, locale=tag, **content) for tag, content in sorted(wanted.items())
        )
    return True
