"""Who may post events: HTTP Basic with a write key as user name, or `writeKey` in the body.

A key's row is kept in the process for WRITE_KEY_CACHE_SECONDS after it was read (issue #15: the
lookup was one of the five round trips of every /v1/track). That is the bound: a key revoked,
deleted, or given another kind or rate limit in Admin is read anew, and refused, at most that many
seconds later in every web process. 0 reads the row on every request. An unknown key is never
kept, so a new key works at once and random keys cannot fill the memory.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest

from events.models import WriteKey, write_key_hash
from triggermail.refusals import basic_user as basic_user_of


class Unauthorized(Exception):
    pass


def basic_user(request: HttpRequest) -> str:
    """The write key in the HTTP Basic header, or "" when there is none."""
    # META, not request.headers: building that mapping of every header costs more than the lookup.
    return basic_user_of(request.META.get("HTTP_AUTHORIZATION", ""))


def _body_key(document: Any) -> str:
    # Official SDKs also put the key in the JSON body, beside the batch or the single message.
    if isinstance(document, dict) and isinstance(document.get("writeKey"), str):
        return str(document["writeKey"])
    return ""


@cache
def _lookup_sql() -> str:
    # This runs on every ingest request, where compiling an ORM query would cost several times
    # what running it does: the SQL is built once.
    table = connection.ops.quote_name(WriteKey._meta.db_table)
    return f"SELECT revoked_at IS NULL, {', '.join(_LOADED)} FROM {table} WHERE key_hash = %s"


# key hash -> (monotonic time until which the row may be used, the row). Plain dict operations are
# atomic under the GIL, which is all the threads of a process need here.
_cache: dict[str, tuple[float, tuple[Any, ...]]] = {}
# Stale entries are only replaced, never swept; past this many the whole cache is dropped.
_CACHE_MAX = 10_000
_clock = time.monotonic


def write_key_cache_clear() -> None:
    _cache.clear()


def _key_row(key_hash: str) -> tuple[Any, ...] | None:
    """(active, *_LOADED values) of the key, from the cache while it is fresh, else the database."""
    seconds: float = settings.WRITE_KEY_CACHE_SECONDS
    now = _clock()
    if seconds > 0:
        cached = _cache.get(key_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
    with connection.cursor() as cursor:
        cursor.execute(_lookup_sql(), [key_hash])
        row = cursor.fetchone()
    if row is not None and seconds > 0:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key_hash] = (now + seconds, tuple(row))
    return None if row is None else tuple(row)


# What the ingest needs of a key: who it is, what its messages may do, and its rate limit. In the
# model's field order, which is the order Model.from_db reads the values in.
_LOADED = tuple(
    f.attname
    for f in WriteKey._meta.concrete_fields
    if f.attname in {"id", "key_hash", "kind", "rate_limit", "rate_burst"}
)


def write_key_authenticate(request: HttpRequest, document: Any = None) -> WriteKey:
    """The active write key the request presents (Basic header first, then the body's writeKey),
    or Unauthorized saying what was wrong. Only the fields in _LOADED are loaded; others load if asked for."""
    raw = basic_user(request) or _body_key(document)
    if not raw:
        raise Unauthorized("no write key: send it as the HTTP Basic user name (empty password)")
    row = _key_row(write_key_hash(raw))
    if row is None:
        raise Unauthorized("unknown write key")
    active, *values = row
    if not active:
        raise Unauthorized("this write key was revoked")
    return WriteKey.from_db(connection.alias, list(_LOADED), values)
