"""A readable difference between two snapshots of a rule or template.

Paths read like the campaign file ("delay", "conditions[0].value"), values like the file writes
them ("1h", 50, gold), and multi-line text such as a body is compared line by line.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from campaigns.authoring.transfer_validation import RULE_FIELDS, TEMPLATE_FIELDS

# PostgreSQL's jsonb does not keep key order, so fields are listed in the file's order instead.
_FIELD_ORDER = ["name", *TEMPLATE_FIELDS, *RULE_FIELDS, "source", "key", "operator", "value"]
NONE = "(none)"


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: str
    after: str
    # For multi-line text: (kind, line) with kind "added", "removed", "context" or "hunk".
    lines: list[tuple[str, str]] = field(default_factory=list)


def _sorted_keys(value: dict[str, Any]) -> list[str]:
    return sorted(value, key=lambda key: (_FIELD_ORDER.index(key) if key in _FIELD_ORDER else len(_FIELD_ORDER), key))


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    """{"conditions[0].value": 50, ...}; an empty list flattens to nothing, so it reads as (none)."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key in _sorted_keys(value):
            flat.update(_flatten(value[key], f"{path}.{key}" if path else key))
        return flat
    if isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        flat = {}
        for index, item in enumerate(value):
            flat.update(_flatten(item, f"{path}[{index}]"))
        return flat
    if value == []:
        return {}
    return {path: value}


def value_text(value: Any) -> str:
    if value is None:
        return NONE
    if isinstance(value, str):
        return value if value else "(empty)"
    if isinstance(value, list):
        return ", ".join(value_text(item) for item in value)
    return json.dumps(value, ensure_ascii=False)


def _line_diff(before: str, after: str) -> list[tuple[str, str]]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=2)
    kinds = {"+": "added", "-": "removed", " ": "context", "@": "hunk"}
    # The first two lines name the "files" (--- / +++), which here say nothing.
    return [(kinds.get(line[:1], "context"), line) for line in list(diff)[2:]]


def snapshot_diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[FieldChange]:
    """Every field whose value differs, in the file's order; added or removed fields read as (none)."""
    old, new = _flatten(before or {}), _flatten(after or {})
    paths = list(old) + [path for path in new if path not in old]
    changes = []
    for path in paths:
        a, b = old.get(path), new.get(path)
        if json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True):
            continue
        if isinstance(a, str | None) and isinstance(b, str | None) and "\n" in f"{a or ''}{b or ''}":
            changes.append(FieldChange(path, value_text(a), value_text(b), _line_diff(a or "", b or "")))
        else:
            changes.append(FieldChange(path, value_text(a), value_text(b)))
    return changes
