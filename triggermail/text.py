"""Which text the databases can store (the one check for ingest, dedupe keys and lookups), and what
a JSON value is called when a message says what was sent instead."""

from __future__ import annotations

from typing import Any


def unstorable_text(text: str) -> str | None:
    """Why PostgreSQL or SQLite could not store (and so compare) this text, or None when they can.

    PostgreSQL refuses NUL in text and jsonb, and no database driver can encode a lone UTF-16
    surrogate. Ingest refuses both in events; a marketer's JSON in Admin (the simulator) and values
    turned into keys can still carry them.
    """
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return "contains an unpaired UTF-16 surrogate, which is not valid Unicode"
    return None


def text_storable(text: str) -> bool:
    return unstorable_text(text) is None


def json_type(value: Any) -> str:
    """A parsed JSON value's type as an error message says it: "an array", "a number with a fraction".

    The campaign files and the SendGrid webhook say it this way. (The ingest API's reasons use the
    bare JSON Schema words, "array", "object": events.parsing, which its clients may already match.)
    """
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    if isinstance(value, float):
        return "a number with a fraction" if not value.is_integer() else "a number written as a float"
    return names.get(type(value), "a number" if isinstance(value, int) else type(value).__name__)
