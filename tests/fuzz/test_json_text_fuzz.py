"""Property tests of `triggermail.json_text.compact_json`: for anything the ingest admits it writes
exactly the json module's compact text (the size a message is measured by, the text PostgreSQL is
sent), and what orjson refuses takes the json module's way, errors included."""

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


@given(value=st.one_of(json_values(), json_objects()))
@example({"total": HUGE, "items": [2**63, -(2**63) - 1, 2**64]})  # past 64 bits: orjson refuses, json writes
@example({"text": "\x01\x1f\x7f\u2028\u2029\"\\/ é 😀", "n": [1e16, 5e-324, -0.0, 0.1]})
def test_it_writes_the_json_modules_compact_text(value: Any) -> None:
    assert compact_json(value) == _json_module(value)


def test_nesting_past_orjsons_limit_is_written_by_the_json_module() -> None:
    value: Any = "leaf"
    for _ in range(300):
        value = {"a": [value]}
    assert compact_json(value) == _json_module(value)


def test_a_lone_surrogate_raises_as_the_json_module_does() -> None:
    # events.storable reads this as "a field the database cannot store" and walks to name it.
    with pytest.raises(UnicodeEncodeError):
        compact_json({"name": "broken \ud800 text"})
