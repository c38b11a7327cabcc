"""Rules and templates as a JSON file, so campaigns live in version control and move between environments.

The file is the truth about everything it names: importing it makes each named template and rule
exactly as written (an optional field left out takes its default) and replaces a rule's conditions
with the file's list. Rows are matched by name. The whole file is validated before anything is
written, and everything is written in one transaction, so a bad file changes nothing.

Export writes sorted keys, two-space indentation and durations in the short form of
`duration_format`, so export → import → export gives the same bytes and a diff shows real changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import ProtectedError

from campaigns.authoring.durations import duration_format
from campaigns.authoring.transfer_languages import KEY as TRANSLATIONS
from campaigns.authoring.transfer_languages import translations_entry, translations_sync
from campaigns.authoring.transfer_validation import (
    FORMAT_VERSION,
    RULE_FIELDS,
    TEMPLATE_FIELDS,
    RulesFileError,
    document_validate,
)
from campaigns.authoring.variants import variants_entry, variants_replace
from campaigns.matching.conditions import ConditionData
from campaigns.matching.windows import WEEKDAY_NAMES, time_text
from campaigns.models import Condition, Rule, Template

# --- Export ----------------------------------------------------------------------------------


def rules_export() -> dict[str, Any]:
    """Every template and rule, as the document that `rules_import` reads back."""
    rules = Rule.objects.select_related("template").prefetch_related("conditions", "variants__template")
    rules = rules.order_by("name")
    return {
        "format": FORMAT_VERSION,
        "templates": {
            template.name: template_entry(template)
            for template in Template.objects.prefetch_related("translations").order_by("name")
        },
        "rules": {rule.name: rule_entry(rule) for rule in rules},
    }


def template_entry(template: Template) -> dict[str, Any]:
    """One template as the file writes it, without its name (the key); also a history snapshot."""
    entry = {name: getattr(template, name) for name in TEMPLATE_FIELDS if name != TRANSLATIONS}
    translations = translations_entry(template) if template.pk is not None else {}
    # Only when there are any: the files of templates in one language read as they always did.
    return {**entry, TRANSLATIONS: translations} if translations else entry


def rule_entry(rule: Rule) -> dict[str, Any]:
    """One rule and its conditions (and A/B variants, if any) as the file writes it, without its name;
    also a history snapshot."""
    variants = variants_entry(rule)
    return ({"variants": variants} if variants else {}) | {
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
        stored = Rule.objects.select_related("template").prefetch_related("conditions", "variants__template")
        rules = {rule.name: rule for rule in stored}
        for name, values in sorted(parsed.rules.items()):
            _rule_sync(name, values, rules.get(name), templates, report)
        if prune:
            kept = _rules_prune([rule for name, rule in sorted(rules.items()) if name not in parsed.rules], report)
            used = {values["template"] for values in parsed.rules.values()} | kept
            used |= {v["template"] for values in parsed.rules.values() for v in values["variants"] if v["template"]}
            unused = [template for name, template in sorted(templates.items())
                      if name not in parsed.templates and name not in used]  # fmt: skip
            _templates_prune(unused, report)
        if dry_run:
            # Nothing above writes on a dry run; this makes sure of it.
            transaction.set_rollback(True)
    return report


def _template_sync(name: str, values: dict[str, Any], template: Template | None, report: ImportReport) -> Template:
    values = dict(values)
    translations = values.pop(TRANSLATIONS, {})
    if template is None:
        report.changes.append(Change("template", name, "create"))
        template = Template(name=name, **values)
        if not report.dry_run:
            template.save()
            translations_sync(template, translations, dry_run=False)
        return template
    changed = [key for key, value in values.items() if getattr(template, key) != value]
    if translations_sync(template, translations, dry_run=report.dry_run):
        changed.append(TRANSLATIONS)
    if not changed:
        report.unchanged += 1
        return template
    report.changes.append(Change("template", name, "update", ", ".join(changed)))
    fields = [key for key in changed if key != TRANSLATIONS]
    for key in fields:
        setattr(template, key, values[key])
    if not report.dry_run:
        template.save(update_fields=[*fields, "updated_at"])
    return template


def _canonical(value: Any) -> str:
    # Values compare by their JSON text: in Python 1 == 1.0 == True, but in a marketer's file they
    # differ. Durations compare as time spans, so "90m" and "1h 30m" are the same.
    return json.dumps(value, sort_keys=True, default=str)


def _rule_differences(rule: Rule, values: dict[str, Any]) -> list[str]:
    # Model values where the file writes another form (durations, times, weekday names).
    native = ("delay", "cooldown", "cap_period", "goal_window", "window_start", "window_end", "window_days")
    current = {"variants": [], **rule_entry(rule), **{key: getattr(rule, key) for key in native}}
    wanted = {**values, "conditions": [_condition_entry(condition) for condition in values["conditions"]]}
    return [key for key in RULE_FIELDS if _canonical(current[key]) != _canonical(wanted[key])]


def _rule_sync(
    name: str, values: dict[str, Any], rule: Rule | None, templates: dict[str, Template], report: ImportReport
) -> None:
    fields = {key: value for key, value in values.items() if key not in ("template", "conditions", "variants")}
    if rule is None:
        report.changes.append(Change("rule", name, "create"))
        if not report.dry_run:
            rule = Rule.objects.create(name=name, template=templates[values["template"]], **fields)
            _conditions_replace(rule, values["conditions"])
            variants_replace(rule, values["variants"], templates)
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
    if "variants" in changed:
        variants_replace(rule, values["variants"], templates)


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
        kept.update(variant.template.name for variant in rule.variants.all() if variant.template is not None)
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
