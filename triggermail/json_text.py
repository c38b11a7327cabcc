"""Compact JSON text of parsed JSON values, the one place the ingest writes it (issue #15).

`compact_json(value)` is `json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()`
but for a float's notation: what the ingest measures a message by (events.storable) and what it
sends PostgreSQL as the rows of a request (events.ingest). orjson writes it several times faster
(the commit that brought it has `make bench` P1 before and after). Both write a float's shortest
round-tripping digits; orjson picks positional or exponent notation by its own rule
(0.00006103515625 where Python writes 6.103515625e-05), so a size can differ by a few bytes per
float, and PostgreSQL stores the same number. What orjson refuses and the json module takes — an
integer past 64 bits (a 400-digit total is data, issue #10), nesting past orjson's 254 levels —
goes to the json module, which writes it, or raises what it raised before (UnicodeEncodeError for
a lone surrogate, RecursionError for absurd depth). NaN and Infinity differ too (orjson writes
null, json the invalid NaN): parsed JSON has none, the ingest refuses them (events.body).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson


def compact_json(value: Any, *, default: Callable[[Any], Any] | None = None) -> bytes:
    """`default` turns a value neither writes by itself into one they do (json.dumps's `default`)."""
    try:
        return orjson.dumps(value, default=default)
    except TypeError:
        # orjson.JSONEncodeError is a TypeError; anything orjson will not write, json decides.
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default).encode()
