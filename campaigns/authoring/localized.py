"""A template in the contact's language: its translation's content in place of its own.

The translation picked by campaigns.matching.locales replaces the subject, the bodies and the
SendGrid template id as a whole (a translation is a complete email, never half one language and
half another); the name, sender, category and topic stay the template's. Real sends, the preview,
the test email and the simulator all render through here.
"""

from __future__ import annotations

import copy

from campaigns.matching.locales import locale_pick
from campaigns.models import Template, TemplateTranslation

CONTENT_FIELDS = ("subject", "html_body", "text_body", "sendgrid_template_id")


def template_localized(template: Template, locale: str) -> tuple[Template, str]:
    """(the template as a contact with this locale gets it, the translation's locale or "" for the default).

    Reads `template.translations`, so a caller handling many sends prefetches them.
    """
    translations = {t.locale: t for t in template.translations.all()} if template.pk is not None else {}
    picked = locale_pick(locale, translations)
    if not picked:
        return template, ""
    return template_with_translation(template, translations[picked]), picked


def template_with_translation(template: Template, translation: TemplateTranslation) -> Template:
    """An unsaved copy of the template carrying the translation's content."""
    localized = copy.copy(template)
    for name in CONTENT_FIELDS:
        setattr(localized, name, getattr(translation, name))
    return localized
