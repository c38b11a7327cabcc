"""Which text the databases can store, for values that reach a query without passing ingest."""

from __future__ import annotations


def text_storable(text: str) -> bool:
    """Whether PostgreSQL and SQLite can both store (and so compare) this text.

    PostgreSQL refuses NUL in text, and no database driver can encode a lone UTF-16 surrogate.
    Ingest refuses both in events; a marketer's JSON in Admin (the simulator) and values turned
    into keys can still carry them.
    """
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
