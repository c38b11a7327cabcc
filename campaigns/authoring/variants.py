"""A/B variants as marketers author them: the checks a rule's variants must pass (Admin and campaign
files alike), their place in the campaign file, and ending a test by promoting one variant.

A rule's variants are written in the file as a list sorted by name, and left out when the rule has
none, so files and history snapshots of rules without a test read exactly as before variants existed:
    "variants": [{"name": "A", "template": "Cart recovery", "weight": 45},
                 {"name": "holdout", "template": null, "weight": 10}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from campaigns.models import Rule, RuleVariant, Template
from campaigns.models.variants import WEIGHT_LARGEST

# The model's limits, so the campaign file and Admin refuse the same names and weights.
# (The sum of a rule's weights is what a contact's hash is spread over: campaigns.matching.variants.)
NAME_LENGTH: int = RuleVariant._meta.get_field("name").max_length  # type: ignore[assignment]


class PromoteError(ValueError):
    """A variant that cannot be promoted, with the reason in words for the marketer."""


def variants_entry(rule: Rule) -> list[dict[str, Any]]:
    """The rule's variants as the file writes them (sorted by name); [] when it has none."""
    variants = sorted(rule.variants.all(), key=lambda v: v.name)
    return [{"name": v.name, "template": v.template.name if v.template else None, "weight": v.weight} for v in variants]


def variants_errors(
    variants: Sequence[Mapping[str, Any]], *, rule_template: Template | None, templates: Mapping[str, Template]
) -> list[str]:
    """What is wrong with a rule's variants as a whole, in words; [] when nothing is.

    Every variant's template must share the rule template's category and topic: consent, caps and
    the unsubscribe headers are decided from the rule's template, so all of a test's emails must be
    alike in those, or the test would email people the rule itself may not.
    """
    errors = []
    names = [str(v["name"]) for v in variants]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"the variant name {name!r} is used twice")
    if variants and not any(v["template"] for v in variants):
        errors.append("at least one variant must send a template; a test of holdouts alone sends nothing")
    if sum(int(v["weight"]) for v in variants) > WEIGHT_LARGEST:
        errors.append(f"the weights add up to more than {WEIGHT_LARGEST}")
    for variant in variants:
        template = templates.get(variant["template"]) if variant["template"] else None
        if template is None or rule_template is None:
            continue
        if (template.category, template.topic) != (rule_template.category, rule_template.topic):
            errors.append(
                f"variant {variant['name']!r}: template {template.name!r} is {template.category}"
                f"{' on topic ' + repr(template.topic) if template.topic else ''}, but the rule's template is "
                f"{rule_template.category}{' on topic ' + repr(rule_template.topic) if rule_template.topic else ''};"
                " a test's emails must share their category and topic"
            )
    return errors


def variants_parse(value: Any) -> list[dict[str, Any]]:
    """The file's `variants` list, checked field by field; raises ValueError naming the entry and field."""
    if not isinstance(value, list):
        raise ValueError('must be a list of variants such as {"name": "A", "template": "…", "weight": 50}')
    parsed, errors = [], []
    for index, raw in enumerate(value):
        if not isinstance(raw, dict) or set(raw) - {"name", "template", "weight"}:
            errors.append(f"[{index}]: must be an object with the fields name, template, weight")
            continue
        name, template, weight = raw.get("name"), raw.get("template"), raw.get("weight", 50)
        if not isinstance(name, str) or not name.strip() or len(name) > NAME_LENGTH:
            errors.append(f"[{index}].name: must be a string of 1 to {NAME_LENGTH} characters")
        if template is not None and (not isinstance(template, str) or not template.strip()):
            errors.append(f"[{index}].template: must be a template's name, or null for a holdout")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= WEIGHT_LARGEST:
            errors.append(f"[{index}].weight: must be a whole number from 1 to {WEIGHT_LARGEST}, not {weight!r}")
        parsed.append({"name": name, "template": template, "weight": weight})
    if errors:
        raise ValueError("; ".join(errors))
    return sorted(parsed, key=lambda v: v["name"])


def variants_replace(rule: Rule, variants: Sequence[Mapping[str, Any]], templates: Mapping[str, Template]) -> None:
    """Make the rule's variants exactly these: kept by name (so a running test's rows stay), others removed."""
    wanted = {str(v["name"]): v for v in variants}
    rule.variants.exclude(name__in=wanted).delete()
    for name, values in wanted.items():
        template = templates[values["template"]] if values["template"] else None
        RuleVariant.objects.update_or_create(
            rule=rule, name=name, defaults={"template": template, "weight": values["weight"]}
        )


def variant_promote(rule: Rule, name: str, *, user: str) -> None:
    """End the rule's test: the rule sends the variant's template to everyone, and the test's variants go.

    Recorded in the rule's history as one change (template and variants), so it can be undone by
    restoring the version before it. Sends already scheduled for another variant go out with the
    rule's template, which is now the winner's (campaigns.sending.message.send_template).
    """
    # Imported here: the history module imports the campaign-file module, which imports this one.
    from campaigns.authoring.history import RULE, change_record, snapshot_load

    with transaction.atomic():
        locked = Rule.objects.select_for_update().get(pk=rule.pk)
        variant = locked.variants.select_related("template").filter(name=name).first()
        if variant is None:
            raise PromoteError(f"The rule {locked.name!r} has no variant {name!r} (any more).")
        if variant.template is None:
            raise PromoteError(f"Variant {name!r} is the holdout: promoting it would send nothing. Pause the rule.")
        before = snapshot_load(RULE, locked.pk)
        locked.template = variant.template
        locked.save(update_fields=["template", "updated_at"])
        locked.variants.all().delete()
        change_record(kind=RULE, object_id=locked.pk, action=f"promoted variant {name}", user=user, before=before)


def variants_file_errors(
    rules: Mapping[str, Mapping[str, Any]], file_templates: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """A campaign file's variant problems across fields: unknown templates, and variants_errors."""
    wanted = {v["template"] for values in rules.values() for v in values.get("variants", ()) if v["template"]}
    wanted |= {values.get("template") for values in rules.values()}
    known = {template.name: template for template in Template.objects.filter(name__in=wanted)}
    # The file's own templates as they will be once imported (unsaved, only compared; their
    # translations are rows of their own).
    columns = {field.name for field in Template._meta.concrete_fields}
    known.update(
        {
            name: Template(name=name, **{key: value for key, value in values.items() if key in columns})
            for name, values in file_templates.items()
        }
    )
    errors = []
    for name, values in rules.items():
        variants = values.get("variants") or []
        errors += [f"rule {name!r}: variants: variant {v['name']!r}: unknown template {v['template']!r}; it is "
                   "neither in this file's templates nor in the database"
                   for v in variants if v["template"] and v["template"] not in known]  # fmt: skip
        problems = variants_errors(variants, rule_template=known.get(values.get("template", "")), templates=known)
        errors += [f"rule {name!r}: variants: {problem}" for problem in problems]
    return errors
