"""Property tests of `triggermail.json_text.compact_json`: for anything the ingest admits it writes
the json module's compact text (the size a message is measured by, the text PostgreSQL is sent) but
for a float's notation, and what orjson refuses takes the json module's way, errors included."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.strategies import HUGE, json_objects, json_values
from triggermail.json_text import compact_json


def _json_module(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _read(text: bytes) -> str:
    # repr tells 1 from 1.0 and -0.0 from 0.0, and keeps the keys' order.
    return repr(json.loads(text))


@given(value=st.one_of(json_values(), json_objects()))
@example({"total": HUGE, "items": [2**63, -(2**63) - 1, 2**64]})  # past 64 bits: orjson refuses, json writes
@example({"text": '\x01\x1f\x7f\u2028\u2029"\\/ é 😀', "n": [1e16, 5e-324, -0.0, 0.1, 6.103515625e-05]})
def test_it_writes_the_json_modules_compact_text_but_for_float_notation(value: Any) -> None:
    try:
        expected = _json_module(value)
    except UnicodeEncodeError:  # a lone surrogate the strategy drew: raised as the json module raises it
        with pytest.raises(UnicodeEncodeError):
            compact_json(value)
        return
    written = compact_json(value)
    # orjson writes a float's shortest digits as Python does, in its own choice of notation
    # (0.00006103515625 where Python writes 6.103515625e-05): the same value, a few bytes apart.
    assert _read(written) == _read(expected)
    if not _has_float(value):
        assert written == expected


def _has_float(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return isinstance(value, float)


def test_nesting_past_orjsons_limit_is_written_by_the_json_module() -> None:
    value: Any = "leaf"
    for _ in range(300):
        value = {"a": [value]}
    assert compact_json(value) == _json_module(value)


def test_a_lone_surrogate_raises_as_the_json_module_does() -> None:
    # events.storable reads this as "a field the database cannot store" and walks to name it.
    with pytest.raises(UnicodeEncodeError):
        compact_json({"name": "broken \ud800 text"})
