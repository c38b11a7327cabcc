"""Whether a message can be stored as it is: no NUL, no lone surrogate, no deeper than MAX_DEPTH.

PostgreSQL refuses a NUL in text or jsonb, and no database can encode an unpaired surrogate; a
message that passes these checks cannot make the database refuse its row.
"""

from __future__ import annotations

from typing import Any

from events.body import MAX_DEPTH
from triggermail.json_text import compact_json
from triggermail.text import unstorable_text


def storable_size(raw: dict[str, Any]) -> int | tuple[str, str]:
    """The message's size as compact UTF-8 JSON, or the first field the database could not store
    as it is, and why."""
    # Walking every string of every message would be most of the cost of parsing a batch, and
    # almost every message is fine. Its serialized form, needed for its size anyway, shows
    # cheaply whether it may not be: a NUL is written as the escape \u0000 (a literal backslash
    # before "u0000" is a false alarm), a lone surrogate cannot be encoded, and a message with no
    # more brackets than MAX_DEPTH cannot be nested deeper. Only a suspect is walked, to name
    # its field.
    encoded = _encoded(raw)
    if encoded is None or b"\\u0000" in encoded or encoded.count(b"[") + encoded.count(b"{") > MAX_DEPTH:
        for key, value in raw.items():
            if reason := unstorable(value) or unstorable_text(key):
                return key, reason
    assert encoded is not None, "a message that cannot be serialized has a field to name"
    return len(encoded)


def _encoded(raw: dict[str, Any]) -> bytes | None:
    try:
        return compact_json(raw)
    except UnicodeEncodeError:
        return None
    except RecursionError:
        # Nested far deeper than MAX_DEPTH, yet just shallow enough for json.loads to read.
        return None


def unstorable(value: Any) -> str | None:
    """Why this JSON value cannot be stored as it is, or None. Iterative, so depth is no risk."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            children: list[Any] = []
            reason = unstorable_text(item)
        elif isinstance(item, dict | list):
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            reason = f"is nested more than {MAX_DEPTH} levels deep" if depth > MAX_DEPTH else None
        else:
            continue
        if reason:
            return reason
        stack.extend((child, depth + 1) for child in children)
    return None
