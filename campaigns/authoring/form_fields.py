"""The form fields of the authoring forms: durations as people say them, comma-separated lists,
condition values as JSON-ish text (50 is a number, gold a string, true a boolean) and language tags.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms import BaseForm

from campaigns.authoring.durations import duration_format, duration_parse
from campaigns.matching.locales import LocaleError, locale_normalize


class HumanDurationField(forms.CharField):
    """A duration typed as "30 minutes", "2 days" or "1h 30m", shown back as "30m".

    A zero duration is shown as `zero_text` ("none" for a cooldown), the word the rule list uses.
    """

    # Wide enough for the whole placeholder in Admin's font; the help text gives the same examples.
    PLACEHOLDER = "e.g. 30 minutes, 2 days, 1h 30m"

    def __init__(self, *, zero_text: str = "0s", **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs={"placeholder": self.PLACEHOLDER, "size": 32}))
        super().__init__(**kwargs)
        self.zero_text = zero_text

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, timedelta):
            return duration_format(value) if value else self.zero_text
        return value

    def to_python(self, value: Any) -> timedelta:  # type: ignore[override]
        if isinstance(value, timedelta):
            return value
        text = super().to_python(value)
        if not text:
            return timedelta(0)
        try:
            return duration_parse(text)
        except ValueError as exc:
            raise ValidationError(str(exc).capitalize() + ".", code="invalid") from exc


class CommaSeparatedListField(forms.CharField):
    """A JSON list of names typed as "order_completed, account_deleted"."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(str(item) for item in value) if isinstance(value, list | tuple) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        items = value if isinstance(value, list | tuple) else (super().to_python(value) or "").split(",")
        # Order is kept (it is the order the marketer wrote); blanks and repeats are dropped.
        return list(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


class _TypedText(str):
    """Text exactly as a person typed it, so a form shown again with errors shows it unchanged."""


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def condition_value_parse(text: str) -> Any:
    """JSON-ish text to a value: 50 → 50, true → True, "gold" or gold → "gold", empty → None."""
    text = text.strip()
    if not text:
        return None
    try:
        # NaN and Infinity are not JSON; PostgreSQL's jsonb would refuse them.
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        if text[0] in '"[{':
            raise ValidationError(
                f"{text} is not valid JSON; to compare with text, write it without quotes.", code="invalid"
            ) from None
        return text


def condition_value_format(value: Any) -> str:
    """The text that condition_value_parse reads back as `value`."""
    if value is None:
        return ""
    if isinstance(value, str):
        # Text that would read back as something else ("50", "true") keeps its quotes.
        try:
            plain = condition_value_parse(value) == value and value == value.strip()
        except ValidationError:
            plain = False
        return value if plain else json.dumps(value)
    return json.dumps(value)


class ConditionValueField(forms.CharField):
    def bound_data(self, data: Any, initial: Any) -> Any:
        return _TypedText(data) if isinstance(data, str) else data

    def prepare_value(self, value: Any) -> Any:
        return value if isinstance(value, _TypedText) else condition_value_format(value)

    def to_python(self, value: Any) -> Any:
        return condition_value_parse(value) if isinstance(value, str) else value

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            value = self.to_python(data)
        except ValidationError:
            return True
        # Compared as JSON, because in Python true == 1 and a change from one to the other would be lost.
        return json.dumps(value, sort_keys=True) != json.dumps(initial, sort_keys=True)


def is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def form_errors(form: BaseForm) -> list[tuple[str, str]]:
    """The errors Admin would show for these values, as (".field" or "", message) pairs: what a campaign
    file is held to (campaigns.authoring.transfer_validation)."""
    if form.is_valid():
        return []
    return [
        ("" if name == NON_FIELD_ERRORS else f".{name}", " ".join(str(message) for message in messages))
        for name, messages in form.errors.items()
    ]


def locale_clean(text: str) -> str:
    """A locale typed in a form, normalized (`pt_br` → `pt-BR`); empty stays empty."""
    if not text.strip():
        return ""
    try:
        return locale_normalize(text)
    except LocaleError as exc:
        raise ValidationError(str(exc)) from None
