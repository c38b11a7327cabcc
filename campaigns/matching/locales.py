"""Languages: which of a template's translations a contact gets.

A locale is a BCP 47 language tag (`en`, `fr`, `pt-BR`). Tags are read with langcodes, which knows
the IANA subtag registry, so `pt_br`, `PT-br` and `pt-BR` are one tag and `english` is none. A
contact's locale picks a translation by the fallback chain `pt-BR` → `pt` → the template's own
(default) content. Pure: matching, sending, the preview and the simulator all decide with it.
"""

from __future__ import annotations

from collections.abc import Collection

import langcodes

# What the trace and the preview call the template's own content.
DEFAULT_WORDS = "the template's default"


class LocaleError(ValueError):
    """Text that is not a language tag; the message says what to write."""


def locale_normalize(text: str) -> str:
    """The tag in its standard form (`pt_br` → `pt-BR`); LocaleError when it is none."""
    raw = text.strip()
    try:
        if raw and langcodes.tag_is_valid(raw):
            return str(langcodes.standardize_tag(raw))
    except (langcodes.LanguageTagError, ValueError):
        pass
    raise LocaleError(f"{text!r} is not a language tag; write e.g. en, fr or pt-BR.")


def locale_chain(locale: str) -> list[str]:
    """The tags to try for a contact's locale, most specific first: `pt-BR` → [`pt-BR`, `pt`].

    A locale that is not a tag (contacts' devices send anything) has no chain: the default is used.
    """
    try:
        tag = locale_normalize(locale)
    except LocaleError:
        return []
    parts = tag.split("-")
    return ["-".join(parts[:length]) for length in range(len(parts), 0, -1)]


def locale_pick(locale: str, available: Collection[str]) -> str:
    """The translation a contact with this locale gets, or "" for the template's default content."""
    return next((tag for tag in locale_chain(locale) if tag in available), "")


def locale_words(locale: str, available: Collection[str]) -> str:
    """The choice in words, for the decision trace: `language pt (contact locale pt-BR)`."""
    picked = locale_pick(locale, available)
    asked = f"contact locale {locale}" if locale else "contact has no locale"
    return f"language {picked or DEFAULT_WORDS} ({asked})"
