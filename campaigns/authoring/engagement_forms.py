"""Engagement conditions in the rule form: pick an earlier rule and what the contact did with its email.

The condition row's key names the earlier rule (offered in a list of the rules' names); its
operator is one of sent, opened, clicked, converted or their negations (campaigns.matching.engagement).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from campaigns.matching.engagement import OPERATORS, SOURCE
from campaigns.models import Condition, Rule


class RuleNameInput(forms.TextInput):
    """A text input offering every rule's name (a <datalist>), for the key of an engagement condition;
    property paths and trait names are still typed freely."""

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        attrs = dict(attrs or {})
        listed = f"{attrs.get('id') or name}-rules"
        html = super().render(name, value, {**attrs, "list": listed}, renderer)
        names = Rule.objects.order_by("name").values_list("name", flat=True)
        options = format_html_join("", '<option value="{}">', ((rule_name,) for rule_name in names))
        return format_html('{}<datalist id="{}">{}</datalist>', html, listed, options)


def engagement_clean(form: forms.BaseForm, cleaned: dict[str, Any]) -> bool:
    """Check an engagement row (or an engagement operator on another source); True when handled."""
    source, operator = cleaned.get("source"), cleaned.get("operator")
    if source != SOURCE:
        if operator in OPERATORS:
            label = Condition.Operator(operator).label
            form.add_error("operator", f"“{label}” reads an earlier rule's email: choose the source “Engagement”.")
            return True
        return False
    if operator and operator not in OPERATORS:
        words = ", ".join(str(Condition.Operator(o).label) for o in OPERATORS)
        form.add_error("operator", f"An engagement condition asks whether the earlier email {words}.")
    # Engagement compares with nothing; a leftover value would only mislead the next reader.
    cleaned["value"] = None
    return True


def engagement_reference_errors(
    rule_name: str, conditions: Iterable[tuple[str, str]], known: Iterable[str]
) -> list[str]:
    """For (source, key) rows: an engagement key must name another rule that exists."""
    names = set(known)
    errors = []
    for number, (source, key) in enumerate(conditions, start=1):
        if source != SOURCE:
            continue
        if key == rule_name:
            errors.append(f"Condition {number}: a rule cannot depend on its own email; name an earlier rule.")
        elif key not in names:
            errors.append(f"Condition {number}: there is no rule named {key!r}.")
    return errors


def engagement_file_errors(rules: dict[str, dict[str, Any]]) -> list[str]:
    """A campaign file's engagement conditions must name a rule of the file or of the database."""
    known = {*rules, *Rule.objects.values_list("name", flat=True)}
    errors = []
    for name, values in rules.items():
        rows = [(c.source, c.key) for c in values.get("conditions", ())]
        errors += [f"rule {name!r}: conditions: {e}" for e in engagement_reference_errors(name, rows, known)]
    return errors
