"""Storing accepted messages: one transaction per request, deduplicated by (source, messageId).

The statements are few and their number does not grow with the batch: one INSERT per 500 events,
one for the contacts. On PostgreSQL the rows of each travel as a single JSON parameter, read by
`json_populate_recordset`: one json.dumps in C replaces adapting each value of each row, and the
statement's text stays the same size whatever the batch. Other databases (SQLite, the embedded
default) take a multi-row VALUES insert and the ORM.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone as django_timezone

from events.models import Contact, Event, WriteKey
from events.parsing import Message
from triggermail.bulk import insert_new_returning

_INSERT_CHUNK = 500
_EVENT_COLUMNS = (
    "message_id", "type", "name", "user_id", "anonymous_id", "properties", "traits", "context",
    "occurred_at", "received_at", "source_id",
)  # fmt: skip
# What a message sets on its sender's Contact; every other column is the model's default.
_CONTACT_COLUMNS = ("user_id", "email", "timezone", "locale", "traits")


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    # Per message type (track, identify…), for the metrics.
    stored_by_type: Counter[str] = field(default_factory=Counter)
    duplicates_by_type: Counter[str] = field(default_factory=Counter)


def events_ingest(*, source: WriteKey, messages: Sequence[Message], received_at: datetime) -> IngestResult:
    """Commit the messages (those not seen before) and their contacts' traits.

    Returns only after the commit, so a 200 answer means the events are stored.
    """
    if not messages:
        return IngestResult(accepted=0, duplicates=0)
    with transaction.atomic():
        new_ids = _events_insert(source, messages, received_at)
        # A retried message must not re-apply old traits over newer ones: only new messages count.
        fresh = [m for m in messages if m.message_id in new_ids]
        # The insert itself wakes the matching: a trigger sends a NOTIFY delivered at commit (events/0004).
        contacts_upsert(fresh)
    # A messageId repeated within the request was stored once, as its first message.
    stored = Counter(m.type for m in {m.message_id: m for m in reversed(fresh)}.values())
    return IngestResult(
        accepted=len(new_ids),
        duplicates=len(messages) - len(new_ids),
        stored_by_type=stored,
        duplicates_by_type=Counter(m.type for m in messages) - stored,
    )


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


def _name(identifier: str) -> str:
    return connection.ops.quote_name(identifier)


def _column(field: models.Field[Any, Any]) -> str:
    # Only fields without a column of their own (many-to-many) have none; these are concrete.
    assert field.column is not None
    return _name(field.column)


# --- Events ---------------------------------------------------------------------------------


def _events_insert(source: WriteKey, messages: Sequence[Message], received_at: datetime) -> set[str]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: the ids that were new.
    Segment deduplicates per source: another write key's message with the same id is stored.
    On PostgreSQL events are partitioned and no unique index spans them: a trigger skips a taken
    (source, messageId) (events_messagekey, campaigns migration 0018), so the INSERT names no
    conflict target, and RETURNING still lists only the rows stored."""
    # Within one request a repeated messageId would conflict with itself; keep the first.
    unique: dict[str, Message] = {}
    for m in messages:
        unique.setdefault(m.message_id, m)
    rows = list(unique.values())
    if not _postgresql():
        return _events_insert_values(rows, source, received_at)
    new_ids: set[str] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _INSERT_CHUNK):
            cursor.execute(*_events_insert_postgresql(rows[start : start + _INSERT_CHUNK], source, received_at))
            new_ids.update(r[0] for r in cursor.fetchall())
    return new_ids


@cache
def _events_sql_postgresql() -> str:
    # Rows are inserted in the order they were posted (WITH ORDINALITY), so event ids, the order
    # in which events are matched, follow the batch.
    table, columns = _name(Event._meta.db_table), [_name(c) for c in _EVENT_COLUMNS]
    selected = ", ".join(f"r.{c}" for c in columns[:-2])
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {selected}, %s, %s "
        f"FROM json_populate_recordset(NULL::{table}, %s::json) WITH ORDINALITY AS r ORDER BY r.ordinality "
        f"ON CONFLICT DO NOTHING RETURNING {columns[0]}"
    )


def _events_insert_postgresql(
    chunk: Sequence[Message], source: WriteKey, received_at: datetime
) -> tuple[str, list[Any]]:
    # Parsing refused anything PostgreSQL cannot store (NUL, lone surrogates, NaN), so the
    # document converts as it is; the column types come from the table itself.
    rows = [
        {
            "message_id": m.message_id, "type": m.type, "name": m.name, "user_id": m.user_id,
            "anonymous_id": m.anonymous_id, "properties": m.properties, "traits": m.traits,
            "context": m.context, "occurred_at": m.occurred_at.isoformat(),
        }
        for m in chunk
    ]  # fmt: skip
    document = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    return _events_sql_postgresql(), [received_at, source.pk, document]


def _events_insert_values(rows: Sequence[Message], source: WriteKey, received_at: datetime) -> set[str]:
    # Other databases (SQLite): a multi-row VALUES insert, values prepared by the Event fields.
    events = [
        Event(
            message_id=m.message_id, type=m.type, name=m.name, user_id=m.user_id, anonymous_id=m.anonymous_id,
            properties=m.properties, traits=m.traits, context=m.context, occurred_at=m.occurred_at,
            received_at=received_at, source_id=source.pk,
        )
        for m in rows
    ]  # fmt: skip
    return {
        message_id
        for (message_id,) in insert_new_returning(
            events, returning=["message_id"], conflict=["source", "message_id"], chunk=_INSERT_CHUNK
        )
    }


# --- Contacts -------------------------------------------------------------------------------


@dataclass
class _ContactUpdate:
    traits: dict[str, Any]
    # None leaves the contact's value as it is; a message never sets one of these to "".
    email: str | None = None
    timezone: str | None = None
    locale: str | None = None


def _contact_updates(messages: Sequence[Message]) -> dict[str, _ContactUpdate]:
    """What each sender's messages say about them, merged in the order they happened."""
    updates: dict[str, _ContactUpdate] = {}
    for m in sorted(messages, key=lambda m: m.occurred_at):
        if not (m.contact_traits or m.timezone or m.locale):
            continue
        update = updates.setdefault(m.user_id, _ContactUpdate(traits={}))
        update.traits.update(m.contact_traits)
        if m.contact_traits.get("email"):
            update.email = str(m.contact_traits["email"])
        update.timezone = m.timezone or update.timezone
        update.locale = m.locale or update.locale
    return updates


def contacts_upsert(messages: Sequence[Message]) -> None:
    """Merge identify traits (and other calls' context.traits) into contacts, in time order.

    A fixed number of queries whatever the number of messages, and none when no message says
    anything about its sender. Contacts are locked in user_id order, so two requests touching
    the same contacts cannot deadlock. A contact the messages would not change is not written.
    """
    updates = _contact_updates(messages)
    if not updates:
        return
    if _postgresql():
        _contacts_upsert_postgresql(updates)
    else:
        _contacts_upsert_orm(updates)


@cache
def _contacts_sql_postgresql() -> tuple[str, tuple[models.Field[Any, Any], ...]]:
    """The upsert, and the fields whose values are the model's defaults (its parameters)."""
    table = _name(Contact._meta.db_table)
    defaulted = tuple(f for f in Contact._meta.concrete_fields if not f.primary_key and f.name not in _CONTACT_COLUMNS)
    user_id, email, zone, locale, traits = (_name(c) for c in _CONTACT_COLUMNS)
    inserted = [f"r.{user_id}", *(f"COALESCE(r.{c}, '')" for c in (email, zone, locale)), f"r.{traits}"]
    columns = [_name(c) for c in _CONTACT_COLUMNS] + [_column(f) for f in defaulted]
    # Traits merge key by key, the newer value winning, as dict.update does; the other fields
    # change only when the messages carry a value (EXCLUDED holds '' when they carry none).
    merged = {
        traits: f"(CASE jsonb_typeof(c.{traits}) WHEN 'object' THEN c.{traits} ELSE '{{}}' END) || EXCLUDED.{traits}",
        **{c: f"COALESCE(NULLIF(EXCLUDED.{c}, ''), c.{c})" for c in (email, zone, locale)},
    }
    updated_at = _column(next(f for f in defaulted if f.name == "updated_at"))
    sql = (
        f"INSERT INTO {table} AS c ({', '.join(columns)}) "
        f"SELECT {', '.join(inserted + ['%s'] * len(defaulted))} "
        f"FROM json_populate_recordset(NULL::{table}, %s::json) AS r ORDER BY r.{user_id} "
        f"ON CONFLICT ({user_id}) DO UPDATE SET "
        + ", ".join(f"{c} = {value}" for c, value in merged.items())
        + f", {updated_at} = EXCLUDED.{updated_at} "
        f"WHERE ({', '.join(merged.values())}) IS DISTINCT FROM ({', '.join(f'c.{c}' for c in merged)})"
    )
    return sql, defaulted


def _contacts_upsert_postgresql(updates: dict[str, _ContactUpdate]) -> None:
    # One statement inserts the new contacts and merges into the others; ORDER BY takes the row
    # locks in user_id order. A contact the update would not change is locked but not rewritten.
    sql, defaulted = _contacts_sql_postgresql()
    template = Contact()
    defaults = [f.get_db_prep_save(f.pre_save(template, add=True), connection) for f in defaulted]
    rows = [
        {"user_id": user_id, "email": u.email, "timezone": u.timezone, "locale": u.locale, "traits": u.traits}
        for user_id, u in updates.items()
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*defaults, json.dumps(rows, ensure_ascii=False, separators=(",", ":"))])


def _contacts_lock(user_ids: Sequence[str]) -> dict[str, Contact]:
    contacts = Contact.objects.select_for_update().filter(user_id__in=user_ids).order_by("user_id")
    return {c.user_id: c for c in contacts}


def _contacts_upsert_orm(updates: dict[str, _ContactUpdate]) -> None:
    # Lock the existing contacts, insert the missing ones (ON CONFLICT DO NOTHING, as a concurrent
    # request may be inserting them too), lock those, and write the changes in one bulk update.
    user_ids = sorted(updates)
    existing = _contacts_lock(user_ids)
    missing = [uid for uid in user_ids if uid not in existing]
    if missing:
        Contact.objects.bulk_create([Contact(user_id=uid) for uid in missing], ignore_conflicts=True)
        existing.update(_contacts_lock(missing))
    now = django_timezone.now()
    changed = [existing[uid] for uid in user_ids if _contact_merge(existing[uid], updates[uid], now)]
    if changed:
        Contact.objects.bulk_update(changed, ["traits", "email", "timezone", "locale", "updated_at"])


def _contact_merge(contact: Contact, update: _ContactUpdate, now: datetime) -> bool:
    """Apply the update to the contact; whether anything changed."""
    before = _contact_state(contact)
    contact.traits = {**(contact.traits if isinstance(contact.traits, dict) else {}), **update.traits}
    contact.email = update.email if update.email is not None else contact.email
    contact.timezone = update.timezone if update.timezone is not None else contact.timezone
    contact.locale = update.locale if update.locale is not None else contact.locale
    if _contact_state(contact) == before:
        return False
    contact.updated_at = now
    return True


def _contact_state(contact: Contact) -> tuple[str, str, str, str]:
    # Compared as JSON, not as Python values: True == 1 == 1.0, but a trait that turns from 1
    # into true has changed.
    return (json.dumps(contact.traits, sort_keys=True), contact.email, contact.timezone, contact.locale)
