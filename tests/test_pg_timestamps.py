"""timestamptz read by psycopg's C loader (triggermail.pg_timestamps): the values Django's own loader
gives, kept by Django's cursors, and the same instant whatever the session's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.pq import Format

from triggermail.pg_timestamps import UtcTimestamptzLoader

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's timestamptz loader"),
]

TEXTS = [
    "2026-03-29 01:30:00.123456+00",  # the hour Paris skips
    "2026-10-25 00:59:59.999999+00",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "1970-01-01 00:00:00+00",
    "2026-12-02 23:00:00+05:45",
    "2024-02-29 12:00:00.5-09:30",
]
# A session east of UTC writes the last moment of year 9999 as year 10000, which no datetime holds.
IN_RANGE_EVERYWHERE = [t for t in TEXTS if not t.startswith(("0001", "9999"))]


def _query(texts: list[str]) -> str:
    return "SELECT " + ", ".join(f"%s::timestamptz AS t{i}" for i in range(len(texts)))


def _django_reading(texts: list[str]) -> tuple[datetime, ...]:
    """The same values through a connection with only Django's loader, in a UTC session."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as own:
        own.execute("SET TIME ZONE 'UTC'")
        register_tzloader(UTC, own)
        row = own.execute(_query(texts), texts).fetchone()
    assert row is not None
    return tuple(row)


def test_djangos_cursors_read_timestamps_with_it_and_get_djangos_values():
    with connection.cursor() as cursor:
        cursor.execute(_query(TEXTS), TEXTS)
        row = cursor.fetchone()
        assert cursor.cursor.adapters.get_loader(1184, Format.TEXT) is UtcTimestamptzLoader
    assert row == _django_reading(TEXTS)
    assert all(value.tzinfo is UTC for value in row)


def test_a_session_in_another_time_zone_still_reads_the_same_instant_in_utc():
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Asia/Kathmandu'")
        try:
            cursor.execute(_query(IN_RANGE_EVERYWHERE), IN_RANGE_EVERYWHERE)
            row = cursor.fetchone()
        finally:
            cursor.execute("SET TIME ZONE 'UTC'")
    assert row == _django_reading(IN_RANGE_EVERYWHERE)
    assert all(value.tzinfo is UTC for value in row)


def test_the_models_read_aware_utc_datetimes():
    from events.models import Contact

    contact = Contact.objects.create(user_id="ts-1", email="ts-1@example.com")
    read = Contact.objects.get(pk=contact.pk)
    assert read.created_at == contact.created_at
    assert read.created_at.tzinfo is UTC
