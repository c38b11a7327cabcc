"""Checks a campaign file (campaigns.authoring.transfer) before anything is written: field parsers return the
model value or raise ValueError saying what to write; the Admin's own forms check each entry too. Errors name the
entry and field. Translations: campaigns.authoring.transfer_languages; variants: campaigns.authoring.variants."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

from campaigns.authoring.durations import duration_parse
from campaigns.authoring.engagement_forms import engagement_file_errors
from campaigns.authoring.form_fields import condition_value_format, form_errors
from campaigns.authoring.forms import ConditionForm, TemplateForm
from campaigns.authoring.timing_forms import timing_errors
from campaigns.authoring.transfer_languages import translations_parse
from campaigns.authoring.variants import variants_file_errors, variants_parse
from campaigns.matching.conditions import ConditionData
from campaigns.matching.windows import WEEKDAY_NAMES
from campaigns.models import CappedAction, Category, Condition, DedupePolicy, Template
from triggermail.text import json_type

FORMAT_VERSION = 1

Parser = Callable[[Any], Any]
REQUIRED = object()  # the default of a field that must be given


class RulesFileError(ValueError):
    """A file that cannot be imported; `errors` name the template or rule and the field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class _Invalid(ValueError):
    """Errors inside one field, each with the path below it (e.g. "[2].operator")."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))
        self.errors = errors


# --- Field parsers: each returns the model value or raises ValueError saying what to write -----


def _text(max_length: int | None = None, *, required: bool = False) -> Parser:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {json_type(value)}")
        if required and not value.strip():
            raise ValueError("must not be empty")
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        return value

    return parse


def _choice(choices: Iterable[str], what: str) -> Parser:
    allowed = list(choices)

    def parse(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"unknown {what} {value!r}; use one of: {', '.join(allowed)}")
        return str(value)

    return parse


def _duration(value: Any) -> timedelta:
    if not isinstance(value, str):
        raise ValueError(f'must be a string such as "30m", "1h 30m" or "0s", not {json_type(value)}')
    return duration_parse(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {json_type(value)}")
    return value


def _cap_count(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32767):
        raise ValueError(f"must be a whole number of emails from 1 up, or null for no cap, not {value!r}")
    return value


def _time_of_day(value: Any) -> time | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) not in (5, 8):
            raise ValueError
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError(f'must be a local time "HH:MM" such as "08:00", or null, not {value!r}') from None


def _weekdays(value: Any) -> list[int]:
    if not isinstance(value, list) or any(day not in WEEKDAY_NAMES for day in value):
        raise ValueError(f"must be a list of weekdays from {', '.join(WEEKDAY_NAMES)} (empty: every day)")
    return sorted({WEEKDAY_NAMES.index(day) for day in value})


def _event_names(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError(f"must be a list of event names, not {json_type(value)}")
    name = _text(255, required=True)
    errors: list[tuple[str, str]] = []
    for index, item in enumerate(value):
        try:
            name(item)
        except ValueError as exc:
            errors.append((f"[{index}]", str(exc)))
    if errors:
        raise _Invalid(errors)
    return list(value)


_CONDITION_FIELDS: dict[str, tuple[Any, Parser]] = {
    "source": (Condition.Source.PROPERTY.value, _choice(Condition.Source.values, "source")),
    "key": (REQUIRED, _text(255, required=True)),
    "operator": (Condition.Operator.EQUALS.value, _choice(Condition.Operator.values, "operator")),
    "value": (None, lambda value: value),
}


def _conditions(value: Any) -> tuple[ConditionData, ...]:
    if not isinstance(value, list):
        raise ValueError(f"must be a list of conditions, not {json_type(value)}")
    conditions: list[ConditionData] = []
    errors: list[tuple[str, str]] = []
    for index, raw in enumerate(value):
        parsed, problems = _entry_parse(raw, _CONDITION_FIELDS)
        if parsed is not None and not problems:
            # Admin's form reads the value as typed text; condition_value_format writes that text.
            text = condition_value_format(parsed["value"])
            problems = form_errors(ConditionForm(data={**parsed, "value": text}))
        errors.extend((f"[{index}]{path}", message) for path, message in problems)
        if parsed is not None and not problems:
            if parsed["operator"] in ("exists", "not_exists") or parsed["source"] == Condition.Source.ENGAGEMENT:
                # As in Admin: "exists" compares with nothing, and a leftover value would mislead.
                parsed["value"] = None
            conditions.append(ConditionData(**parsed))
    if errors:
        raise _Invalid(errors)
    return tuple(conditions)


TEMPLATE_FIELDS: dict[str, tuple[Any, Parser]] = {
    "subject": ("", _text(255)),
    "html_body": ("", _text()),
    "text_body": ("", _text()),
    "sendgrid_template_id": ("", _text(64)),
    "from_email": ("", _text(255)),
    "category": (Category.MARKETING.value, _choice(Category.values, "category")),
    "topic": ("", _text(100)),
    "translations": ({}, translations_parse),
}

RULE_FIELDS: dict[str, tuple[Any, Parser]] = {
    "trigger_event": (REQUIRED, _text(255, required=True)),
    "template": (REQUIRED, _text(100, required=True)),
    "delay": (timedelta(0), _duration),
    "cooldown": (timedelta(0), _duration),
    "active": (True, _boolean),
    "exit_events": ([], _event_names),
    "dedupe_policy": (DedupePolicy.PER_EVENT.value, _choice(DedupePolicy.values, "dedupe policy")),
    "dedupe_property": ("", _text(255)),
    "cap_count": (None, _cap_count),
    "cap_period": (timedelta(days=1), _duration),
    "capped_action": (CappedAction.SKIP.value, _choice(CappedAction.values, "capped action")),
    "window_start": (None, _time_of_day),
    "window_end": (None, _time_of_day),
    "window_days": ([], _weekdays),
    "goal_event": ("", _text(255)),
    "goal_window": (timedelta(days=3), _duration),
    "conditions": ((), _conditions),
    "variants": ([], variants_parse),
}


def _entry_parse(
    raw: Any, fields: Mapping[str, tuple[Any, Parser]]
) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """The values of the fields that are valid, and [(".field", message), ...] for those that are not.

    Values come back even when some fields are wrong, so checks across fields (the template a rule
    names) still run and one attempt reports every problem in the file.
    """
    if not isinstance(raw, dict):
        return None, [("", f"must be an object, not {json_type(raw)}")]
    errors: list[tuple[str, str]] = [
        (f".{key}", f"unknown field; the fields are: {', '.join(fields)}") for key in raw if key not in fields
    ]
    values: dict[str, Any] = {}
    for name, (default, parse) in fields.items():
        if name not in raw:
            if default is REQUIRED:
                errors.append((f".{name}", "is required"))
            # A copy, so no two rows share one mutable default such as the empty exit_events list.
            values[name] = copy.copy(default)
            continue
        try:
            values[name] = parse(raw[name])
        except _Invalid as exc:
            errors.extend((f".{name}{path}", message) for path, message in exc.errors)
        except ValueError as exc:
            errors.append((f".{name}", str(exc)))
    return values, errors


# --- Validation of a whole document ------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    templates: dict[str, dict[str, Any]]
    rules: dict[str, dict[str, Any]]


def _named_entries(document: dict[str, Any], section: str, kind: str, fields: Mapping, errors: list[str]) -> dict:
    raw = document.get(section, {})
    if not isinstance(raw, dict):
        errors.append(f"{section}: must be an object keyed by {kind} name, not {json_type(raw)}")
        return {}
    entries = {}
    for name, entry in raw.items():
        if not name.strip() or len(name) > 100:
            errors.append(f"{kind} {name!r}: the name must be 1 to 100 characters")
        values, problems = _entry_parse(entry, fields)
        if values is not None and not problems and kind == "template":
            problems = _templateform_errors(name, values)
        errors.extend(f"{kind} {name!r}: {path.lstrip('.')}: {message}" for path, message in problems)
        if values is not None:
            entries[name] = values
    return entries


def _templateform_errors(name: str, values: dict[str, Any]) -> list[tuple[str, str]]:
    # The existing row is the form's instance, so Admin's "name already exists" check passes for it.
    instance = Template.objects.filter(name=name).first() or Template()
    return form_errors(TemplateForm(data={**values, "name": name}, instance=instance))


def _rule_cross_errors(rules: dict[str, dict[str, Any]], file_templates: set[str]) -> list[str]:
    """What is wrong between fields: a template that exists nowhere, a policy without its property."""
    elsewhere = {values["template"] for values in rules.values() if "template" in values} - file_templates
    unknown = elsewhere - set(Template.objects.filter(name__in=elsewhere).values_list("name", flat=True))
    errors = engagement_file_errors(rules)
    for name, values in rules.items():
        if values.get("template") in unknown:
            errors.append(f"rule {name!r}: template: unknown template {values['template']!r}; "
                          "it is neither in this file's templates nor in the database")  # fmt: skip
        if values.get("dedupe_policy") == DedupePolicy.PER_PROPERTY and not values.get("dedupe_property"):
            errors.append(f"rule {name!r}: dedupe_property: is required with dedupe policy 'per_property'")
        timing = ("window_start", "window_end", "window_days", "cap_count", "cap_period", "goal_event", "goal_window")
        # A field that did not parse was reported already; its combinations are checked once it does.
        if all(key in values for key in timing):
            problems = timing_errors(**{key: values[key] for key in timing})
            errors.extend(f"rule {name!r}: {field}: {message}" for field, message in problems.items())
    return errors


def document_validate(document: Any) -> Document:
    """The document's templates and rules as model values; raise RulesFileError listing every problem."""
    if not isinstance(document, dict):
        raise RulesFileError([f"the file must hold a JSON object, not {json_type(document)}"])
    errors = [f"{key}: unknown section; the sections are: format, templates, rules" for key in document
              if key not in ("format", "templates", "rules")]  # fmt: skip
    if document.get("format") != FORMAT_VERSION:
        errors.append(f"format: must be {FORMAT_VERSION}, not {document.get('format')!r}")
    templates = _named_entries(document, "templates", "template", TEMPLATE_FIELDS, errors)
    rules = _named_entries(document, "rules", "rule", RULE_FIELDS, errors)
    raw_templates = document.get("templates")
    errors.extend(_rule_cross_errors(rules, set(raw_templates) if isinstance(raw_templates, dict) else set()))
    errors.extend(variants_file_errors(rules, templates))
    if errors:
        raise RulesFileError(errors)
    return Document(templates=templates, rules=rules)
