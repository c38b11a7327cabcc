"""Rules and templates as a JSON file, so campaigns live in version control and move between environments.

The file is the truth about everything it names: importing it makes each named template and rule
exactly as written (an optional field left out takes its default) and replaces a rule's conditions
with the file's list. Rows are matched by name. The whole file is validated before anything is
written, and everything is written in one transaction, so a bad file changes nothing.

Export writes sorted keys, two-space indentation and durations in the short form of
`duration_format`, so export → import → export gives the same bytes and a diff shows real changes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.db import transaction
from django.db.models import ProtectedError
from django.forms import BaseForm

from campaigns.conditions import ConditionData
from campaigns.durations import duration_format, duration_parse
from campaigns.forms import ConditionForm, TemplateForm, condition_value_format
from campaigns.models import CappedAction, Category, Condition, DedupePolicy, Rule, Template
from campaigns.timing_forms import timing_errors
from campaigns.windows import WEEKDAY_NAMES, time_text

FORMAT_VERSION = 1

Parser = Callable[[Any], Any]
# The default of a field that must be given.
REQUIRED = object()


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


# --- Export ----------------------------------------------------------------------------------


def rules_export() -> dict[str, Any]:
    """Every template and rule, as the document that `rules_import` reads back."""
    rules = Rule.objects.select_related("template").prefetch_related("conditions").order_by("name")
    return {
        "format": FORMAT_VERSION,
        "templates": {template.name: template_entry(template) for template in Template.objects.order_by("name")},
        "rules": {rule.name: rule_entry(rule) for rule in rules},
    }


def template_entry(template: Template) -> dict[str, Any]:
    """One template as the file writes it, without its name (the key); also a history snapshot."""
    return {name: getattr(template, name) for name in TEMPLATE_FIELDS}


def rule_entry(rule: Rule) -> dict[str, Any]:
    """One rule and its conditions as the file writes it, without its name; also a history snapshot."""
    return {
        "trigger_event": rule.trigger_event,
        "template": rule.template.name,
        "delay": duration_format(rule.delay),
        "cooldown": duration_format(rule.cooldown),
        "active": rule.active,
        "exit_events": list(rule.exit_events),
        "dedupe_policy": rule.dedupe_policy,
        "dedupe_property": rule.dedupe_property,
        "cap_count": rule.cap_count,
        "cap_period": duration_format(rule.cap_period),
        "capped_action": rule.capped_action,
        "window_start": time_text(rule.window_start) if rule.window_start is not None else None,
        "window_end": time_text(rule.window_end) if rule.window_end is not None else None,
        "window_days": [WEEKDAY_NAMES[day] for day in rule.window_days],
        "goal_event": rule.goal_event,
        "goal_window": duration_format(rule.goal_window),
        # From the prefetch, which follows Condition.Meta.ordering (position, id).
        "conditions": [_condition_entry(condition) for condition in rule.conditions.all()],
    }


def _condition_entry(condition: Condition | ConditionData) -> dict[str, Any]:
    return {"source": condition.source, "key": condition.key, "operator": condition.operator, "value": condition.value}


def document_dumps(document: Mapping[str, Any]) -> str:
    """The file's text: stable key order and indentation, readable non-ASCII, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def document_loads(text: str) -> Any:
    """Parse a file's text; raise RulesFileError for bad JSON or a name given twice."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                # json.loads would silently keep the last one, hiding a copy-paste mistake.
                raise RulesFileError([f"{key!r} appears twice in the same object"])
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise RulesFileError([f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"]) from exc


# --- Field parsers: each returns the model value or raises ValueError saying what to write -----


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def _text(max_length: int | None = None, *, required: bool = False) -> Parser:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_json_type(value)}")
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
        raise ValueError(f'must be a string such as "30m", "1h 30m" or "0s", not {_json_type(value)}')
    return duration_parse(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_json_type(value)}")
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
        raise ValueError(f"must be a list of event names, not {_json_type(value)}")
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
        raise ValueError(f"must be a list of conditions, not {_json_type(value)}")
    conditions: list[ConditionData] = []
    errors: list[tuple[str, str]] = []
    for index, raw in enumerate(value):
        parsed, problems = _entry_parse(raw, _CONDITION_FIELDS)
        if parsed is not None and not problems:
            # Admin's form reads the value as typed text; condition_value_format writes that text.
            text = condition_value_format(parsed["value"])
            problems = _form_errors(ConditionForm(data={**parsed, "value": text}))
        errors.extend((f"[{index}]{path}", message) for path, message in problems)
        if parsed is not None and not problems:
            if parsed["operator"] in ("exists", "not_exists"):
                # As in Admin: "exists" compares with nothing, and a leftover value would mislead.
                parsed["value"] = None
            conditions.append(ConditionData(**parsed))
    if errors:
        raise _Invalid(errors)
    return tuple(conditions)


def _form_errors(form: BaseForm) -> list[tuple[str, str]]:
    """The errors Admin would show for the same values, so a file is held to the same rules."""
    if form.is_valid():
        return []
    return [
        ("" if name == NON_FIELD_ERRORS else f".{name}", " ".join(str(message) for message in messages))
        for name, messages in form.errors.items()
    ]


TEMPLATE_FIELDS: dict[str, tuple[Any, Parser]] = {
    "subject": ("", _text(255)),
    "html_body": ("", _text()),
    "text_body": ("", _text()),
    "sendgrid_template_id": ("", _text(64)),
    "from_email": ("", _text(255)),
    "category": (Category.MARKETING.value, _choice(Category.values, "category")),
    "topic": ("", _text(100)),
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
}


def _entry_parse(
    raw: Any, fields: Mapping[str, tuple[Any, Parser]]
) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """The values of the fields that are valid, and [(".field", message), ...] for those that are not.

    Values come back even when some fields are wrong, so checks across fields (the template a rule
    names) still run and one attempt reports every problem in the file.
    """
    if not isinstance(raw, dict):
        return None, [("", f"must be an object, not {_json_type(raw)}")]
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
        errors.append(f"{section}: must be an object keyed by {kind} name, not {_json_type(raw)}")
        return {}
    entries = {}
    for name, entry in raw.items():
        if not name.strip() or len(name) > 100:
            errors.append(f"{kind} {name!r}: the name must be 1 to 100 characters")
        values, problems = _entry_parse(entry, fields)
        if values is not None and not problems and kind == "template":
            problems = _template_form_errors(name, values)
        errors.extend(f"{kind} {name!r}: {path.lstrip('.')}: {message}" for path, message in problems)
        if values is not None:
            entries[name] = values
    return entries


def _template_form_errors(name: str, values: dict[str, Any]) -> list[tuple[str, str]]:
    # The existing row is the form's instance, so Admin's "name already exists" check passes for it.
    instance = Template.objects.filter(name=name).first() or Template()
    return _form_errors(TemplateForm(data={**values, "name": name}, instance=instance))


def _rule_cross_errors(rules: dict[str, dict[str, Any]], file_templates: set[str]) -> list[str]:
    """What is wrong between fields: a template that exists nowhere, a policy without its property."""
    elsewhere = {values["template"] for values in rules.values() if "template" in values} - file_templates
    unknown = elsewhere - set(Template.objects.filter(name__in=elsewhere).values_list("name", flat=True))
    errors = []
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
        raise RulesFileError([f"the file must hold a JSON object, not {_json_type(document)}"])
    errors = [f"{key}: unknown section; the sections are: format, templates, rules" for key in document
              if key not in ("format", "templates", "rules")]  # fmt: skip
    if document.get("format") != FORMAT_VERSION:
        errors.append(f"format: must be {FORMAT_VERSION}, not {document.get('format')!r}")
    templates = _named_entries(document, "templates", "template", TEMPLATE_FIELDS, errors)
    rules = _named_entries(document, "rules", "rule", RULE_FIELDS, errors)
    raw_templates = document.get("templates")
    errors.extend(_rule_cross_errors(rules, set(raw_templates) if isinstance(raw_templates, dict) else set()))
    if errors:
        raise RulesFileError(errors)
    return Document(templates=templates, rules=rules)


# --- Import ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    kind: str  # "template" or "rule"
    name: str
    action: str  # "create", "update", "delete", "deactivate" or "keep"
    detail: str = ""

    def line(self, *, dry_run: bool) -> str:
        verbs = {"create": "created", "update": "updated", "delete": "deleted", "deactivate": "deactivated",
                 "keep": "kept"}  # fmt: skip
        verb = f"would {self.action}" if dry_run else verbs[self.action]
        text = f"{verb} {self.kind} {self.name!r}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass
class ImportReport:
    dry_run: bool
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def lines(self) -> list[str]:
        lines = [change.line(dry_run=self.dry_run) for change in self.changes]
        lines.append(f"{self.unchanged} unchanged." if lines else f"Nothing to change: {self.unchanged} unchanged.")
        if self.dry_run:
            lines.append("Dry run: nothing was written.")
        return lines


def rules_import(document: Any, *, dry_run: bool = False, prune: bool = False) -> ImportReport:
    """Make the database match the document; with `prune`, remove rules (and unused templates) it lacks."""
    report = ImportReport(dry_run=dry_run)
    with transaction.atomic():
        parsed = document_validate(document)
        templates = {template.name: template for template in Template.objects.all()}
        for name, values in sorted(parsed.templates.items()):
            templates[name] = _template_sync(name, values, templates.get(name), report)
        rules = {rule.name: rule for rule in Rule.objects.select_related("template").prefetch_related("conditions")}
        for name, values in sorted(parsed.rules.items()):
            _rule_sync(name, values, rules.get(name), templates, report)
        if prune:
            kept = _rules_prune([rule for name, rule in sorted(rules.items()) if name not in parsed.rules], report)
            used = {values["template"] for values in parsed.rules.values()} | kept
            unused = [template for name, template in sorted(templates.items())
                      if name not in parsed.templates and name not in used]  # fmt: skip
            _templates_prune(unused, report)
        if dry_run:
            # Nothing above writes on a dry run; this makes sure of it.
            transaction.set_rollback(True)
    return report


def _template_sync(name: str, values: dict[str, Any], template: Template | None, report: ImportReport) -> Template:
    if template is None:
        report.changes.append(Change("template", name, "create"))
        template = Template(name=name, **values)
        if not report.dry_run:
            template.save()
        return template
    changed = [key for key, value in values.items() if getattr(template, key) != value]
    if not changed:
        report.unchanged += 1
        return template
    report.changes.append(Change("template", name, "update", ", ".join(changed)))
    for key in changed:
        setattr(template, key, values[key])
    if not report.dry_run:
        template.save(update_fields=[*changed, "updated_at"])
    return template


def _canonical(value: Any) -> str:
    # Values compare by their JSON text: in Python 1 == 1.0 == True, but in a marketer's file they
    # differ. Durations compare as time spans, so "90m" and "1h 30m" are the same.
    return json.dumps(value, sort_keys=True, default=str)


def _rule_differences(rule: Rule, values: dict[str, Any]) -> list[str]:
    # Model values where the file writes another form (durations, times, weekday names).
    native = ("delay", "cooldown", "cap_period", "goal_window", "window_start", "window_end", "window_days")
    current = {**rule_entry(rule), **{key: getattr(rule, key) for key in native}}
    wanted = {**values, "conditions": [_condition_entry(condition) for condition in values["conditions"]]}
    return [key for key in RULE_FIELDS if _canonical(current[key]) != _canonical(wanted[key])]


def _rule_sync(
    name: str, values: dict[str, Any], rule: Rule | None, templates: dict[str, Template], report: ImportReport
) -> None:
    fields = {key: value for key, value in values.items() if key not in ("template", "conditions")}
    if rule is None:
        report.changes.append(Change("rule", name, "create"))
        if not report.dry_run:
            rule = Rule.objects.create(name=name, template=templates[values["template"]], **fields)
            _conditions_replace(rule, values["conditions"])
        return
    changed = _rule_differences(rule, values)
    if not changed:
        report.unchanged += 1
        return
    report.changes.append(Change("rule", name, "update", ", ".join(changed)))
    if report.dry_run:
        return
    for key, value in fields.items():
        setattr(rule, key, value)
    rule.template = templates[values["template"]]
    rule.save()
    if "conditions" in changed:
        _conditions_replace(rule, values["conditions"])


def _conditions_replace(rule: Rule, conditions: tuple[ConditionData, ...]) -> None:
    rule.conditions.all().delete()
    Condition.objects.bulk_create(
        Condition(rule=rule, position=position, source=c.source, key=c.key, operator=c.operator, value=c.value)
        for position, c in enumerate(conditions)
    )


def _rules_prune(rules: list[Rule], report: ImportReport) -> set[str]:
    """Delete rules; deactivate those that have sends instead. Returns the templates kept rules use."""
    kept: set[str] = set()
    for rule in rules:
        sends = rule.sends.count()
        if not sends and _deleted(rule, report.dry_run):
            report.changes.append(Change("rule", rule.name, "delete"))
            continue
        kept.add(rule.template.name)
        why = f"it has {sends} send{'s' if sends != 1 else ''}, which keep their rule, so it cannot be deleted"
        if rule.active:
            report.changes.append(Change("rule", rule.name, "deactivate", f"instead of deleting: {why}"))
            if not report.dry_run:
                rule.active = False
                rule.save(update_fields=["active", "updated_at"])
        else:
            report.changes.append(Change("rule", rule.name, "keep", f"already inactive; {why}"))
    return kept


def _templates_prune(templates: list[Template], report: ImportReport) -> None:
    for template in templates:
        if _deleted(template, report.dry_run):
            report.changes.append(Change("template", template.name, "delete"))
        else:
            report.changes.append(Change("template", template.name, "keep", "a rule created meanwhile uses it"))


def _deleted(row: Rule | Template, dry_run: bool) -> bool:
    """Delete the row unless something protects it; a dry run only says whether it could."""
    if dry_run:
        return True
    try:
        # A send or rule may be created between our check and the delete: the savepoint keeps
        # that race from failing the whole import.
        with transaction.atomic():
            row.delete()
    except ProtectedError:
        return False
    return True
