"""timestamptz values read by psycopg's C loader instead of Django's Python one (issue #15).

Django's PostgreSQL backend gives every connection its own timestamptz loader
(django/db/backends/postgresql/psycopg_any.py): a subclass of psycopg's pure-Python loader that
parses the text with a regular expression and then sets the connection's tzinfo. py-spy put 5.3 %
of the qcluster's CPU under it (inclusive) during `make bench` S (a claim reads a dozen timestamps per send).
psycopg[binary] ships the same loader in C; Django cannot subclass it, so this loader calls it.
`python -m bench.bulk_cpu` reads 2,000 timestamps a query both ways: 5.2 µs of CPU per value
through Django's loader, 0.65 µs through this one (the query's own cost included).

Django's loader returns the session's time zone's reading with the connection's tzinfo put on it;
with USE_TZ and the database's TIME_ZONE unset (this project's settings) that is UTC, which Django
also sets as the session's TimeZone. psycopg's loader answers in the session's zone: in UTC it
returns datetime.UTC itself, and any other zone is converted (the same instant, in UTC), so the
values are Django's. `timezone` is what Django's cursor checks to keep a connection's loader.
Connections whose Django time zone is not UTC keep Django's loader.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.abc import AdaptContext
from psycopg.adapt import Loader
from psycopg.pq import Format


class UtcTimestamptzLoader(Loader):
    timezone = UTC

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        # psycopg's default loader for the type: its C one when psycopg's C implementation is installed.
        default = psycopg.adapters.get_loader(oid, Format.TEXT)
        assert default is not None, "psycopg registers a timestamptz loader of its own"
        self._load = default(oid, context).load

    def load(self, data: Any) -> datetime:
        value: datetime = self._load(data)
        return value if value.tzinfo is UTC else value.astimezone(UTC)


def utc_timestamps_register(sender: object, connection: BaseDatabaseWrapper, **kwargs: object) -> None:
    """`connection_created` receiver: a new PostgreSQL connection in UTC reads timestamptz in C."""
    if connection.vendor == "postgresql" and getattr(connection, "timezone", None) == UTC:
        connection.connection.adapters.register_loader("timestamptz", UtcTimestamptzLoader)
