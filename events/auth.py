"""Who may post events: HTTP Basic with a write key as user name, or `writeKey` in the body."""

from __future__ import annotations

from functools import cache
from typing import Any

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
    # what running it does: the SQL is built once. Only the text is cached, never a key, so a
    # revoked key is refused on its very next request.
    table = connection.ops.quote_name(WriteKey._meta.db_table)
    return f"SELECT revoked_at IS NULL, {', '.join(_LOADED)} FROM {table} WHERE key_hash = %s"


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
    with connection.cursor() as cursor:
        cursor.execute(_lookup_sql(), [write_key_hash(raw)])
        row = cursor.fetchone()
    if row is None:
        raise Unauthorized("unknown write key")
    active, *values = row
    if not active:
        raise Unauthorized("this write key was revoked")
    return WriteKey.from_db(connection.alias, list(_LOADED), values)
