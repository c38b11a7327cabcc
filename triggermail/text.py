"""Which text the databases can store: the one check for ingest, dedupe keys and lookups."""

from __future__ import annotations


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
