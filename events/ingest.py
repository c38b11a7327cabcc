"""Storing accepted messages: all or none per request, deduplicated by (source, messageId).

On PostgreSQL a request is ONE statement in autocommit, whatever its size: a data-modifying CTE
inserts the events (ON CONFLICT DO NOTHING, RETURNING the new ones) and merges what the new ones
say about their senders into their contacts. A statement is atomic by itself, so there is no
BEGIN and no COMMIT to wait for: one round trip (issue #15). The rows travel as JSON parameters,
read by `json_populate_recordset`/`json_to_recordset`: one JSON text (orjson) replaces adapting each
value of each row, and the statement's text stays the same whatever the batch. Other databases
(SQLite, the embedded default) take a transaction, a multi-row VALUES insert and the ORM.
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
from triggermail.json_text import compact_json
from triggermail.wakeup import wake

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
    if _postgresql():
        new_ids = _ingest_postgresql(source, messages, received_at)
        fresh = [m for m in messages if m.message_id in new_ids]
    else:
        with transaction.atomic():
            new_ids = _events_insert_values(_first_of_each_id(messages), source, received_at)
            # A retried message must not re-apply old traits over newer ones: only new messages count.
            fresh = [m for m in messages if m.message_id in new_ids]
            _contacts_upsert_orm(_contact_updates(fresh))
    if new_ids:
        # Only after the commit, as a statement of its own (triggermail.wakeup: why not inside it).
        transaction.on_commit(wake)
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


def _first_of_each_id(messages: Sequence[Message]) -> list[Message]:
    # Within one request a repeated messageId would conflict with itself; keep the first.
    unique: dict[str, Message] = {}
    for m in messages:
        unique.setdefault(m.message_id, m)
    return list(unique.values())


def event_conflict_clause() -> str:
    """What makes a repeated (source, messageId) a no-op on PostgreSQL: the one place that says how.
    Segment deduplicates per source: another write key's message with the same id is stored.
    Events are partitioned and no unique index spans the partitions: a trigger skips a taken
    (source, messageId) (events_messagekey, campaigns migration 0018), so the INSERT names no
    conflict target, and RETURNING still lists only the rows stored."""
    return "ON CONFLICT DO NOTHING"


def _ingest_postgresql(source: WriteKey, messages: Sequence[Message], received_at: datetime) -> set[str]:
    """Insert the events and merge the new ones' contact facts, in one statement: the ids that were new."""
    rows = _first_of_each_id(messages)
    facts = _contact_facts(messages)
    sql = _ingest_sql_postgresql(with_contacts=bool(facts))
    params: list[Any] = [received_at, source.pk, _json(_event_rows(rows))]
    if facts:
        params += [_json(facts), *_contact_defaults()]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {r[0] for r in cursor.fetchall()}


def _json(rows: list[dict[str, Any]]) -> str:
    # Parsing refused anything PostgreSQL cannot store (NUL, lone surrogates, NaN), so the
    # document converts as it is; the column types come from the table itself.
    return compact_json(rows).decode()


def _event_rows(rows: Sequence[Message]) -> list[dict[str, Any]]:
    return [
        {
            "message_id": m.message_id, "type": m.type, "name": m.name, "user_id": m.user_id,
            "anonymous_id": m.anonymous_id, "properties": m.properties, "traits": m.traits,
            "context": m.context, "occurred_at": m.occurred_at.isoformat(),
        }
        for m in rows
    ]  # fmt: skip


@cache
def _ingest_sql_postgresql(*, with_contacts: bool) -> str:
    # Rows are inserted in the order they were posted (WITH ORDINALITY), so event ids, the order
    # in which events are matched, follow the batch. The matching is woken after the commit
    # (events_ingest, triggermail.wakeup.wake).
    table, columns = _name(Event._meta.db_table), [_name(c) for c in _EVENT_COLUMNS]
    selected = ", ".join(f"r.{c}" for c in columns[:-2])
    message_id = columns[0]
    insert = (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {selected}, %s, %s "
        f"FROM json_populate_recordset(NULL::{table}, %s::json) WITH ORDINALITY AS r ORDER BY r.ordinality "
        f"{event_conflict_clause()} RETURNING {message_id}"
    )
    if not with_contacts:
        return insert
    return f"WITH new AS ({insert}), {_contacts_ctes_postgresql()} SELECT {message_id} FROM new"


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


def _contact_facts(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """What each message says about its sender, numbered in the order the messages happened
    (`seq`; posted order among equal times): the rows that the statement merges, as
    _contact_updates does for the other databases."""
    facts = []
    for seq, m in enumerate(sorted(messages, key=lambda m: m.occurred_at)):
        if not (m.contact_traits or m.timezone or m.locale):
            continue
        email = m.contact_traits.get("email")
        facts.append(
            {
                "message_id": m.message_id, "seq": seq, "user_id": m.user_id, "traits": m.contact_traits,
                "email": str(email) if email else None, "timezone": m.timezone or None, "locale": m.locale or None,
            }
        )  # fmt: skip
    return facts


def _contact_defaults() -> list[Any]:
    """The values of the Contact columns a message does not set (the model's defaults), in the
    order of _contacts_defaulted()."""
    template = Contact()
    return [f.get_db_prep_save(f.pre_save(template, add=True), connection) for f in _contacts_defaulted()]


@cache
def _contacts_defaulted() -> tuple[models.Field[Any, Any], ...]:
    return tuple(f for f in Contact._meta.concrete_fields if not f.primary_key and f.name not in _CONTACT_COLUMNS)


@cache
def _contacts_ctes_postgresql() -> str:
    """`facts`, `merged` and `contacts`: the CTEs that follow `new` (the ids just inserted).

    Only the facts of new messages count, so a retried message never re-applies old traits over
    newer ones. Per sender, traits merge key by key in `seq` order (jsonb_object_agg keeps a
    repeated key's last value, as dict.update does); email, timezone and locale take the last
    value given. Contacts are inserted or merged in user_id order, so two requests touching the
    same contacts lock them in the same order and cannot deadlock; a contact the merge would not
    change is locked but not rewritten.
    """
    table = _name(Contact._meta.db_table)
    defaulted = _contacts_defaulted()
    user_id, email, zone, locale, traits = (_name(c) for c in _CONTACT_COLUMNS)
    message_id = _name("message_id")
    facts = (
        f"facts AS (SELECT f.* FROM json_to_recordset(%s::json) AS f({message_id} text, seq int, {user_id} text, "
        f"{traits} jsonb, {email} text, {zone} text, {locale} text) "
        f"WHERE f.{message_id} IN (SELECT {message_id} FROM new))"
    )
    last = {
        c: f"(array_agg(f.{c} ORDER BY f.seq DESC) FILTER (WHERE f.{c} IS NOT NULL))[1]" for c in (email, zone, locale)
    }
    merged = (
        f"merged AS (SELECT f.{user_id}, "
        "COALESCE(jsonb_object_agg(t.key, t.value ORDER BY f.seq) FILTER (WHERE t.key IS NOT NULL), '{}')"
        f" AS {traits}, "
        + ", ".join(f"{value} AS {c}" for c, value in last.items())
        + f" FROM facts AS f LEFT JOIN LATERAL jsonb_each(f.{traits}) AS t ON true GROUP BY f.{user_id})"
    )
    inserted = [f"r.{user_id}", *(f"COALESCE(r.{c}, '')" for c in (email, zone, locale)), f"r.{traits}"]
    columns = [_name(c) for c in _CONTACT_COLUMNS] + [_column(f) for f in defaulted]
    # Traits merge key by key, the newer value winning; the other fields change only when the
    # messages carry a value (EXCLUDED holds '' when they carry none).
    update = {
        traits: f"(CASE jsonb_typeof(c.{traits}) WHEN 'object' THEN c.{traits} ELSE '{{}}' END) || EXCLUDED.{traits}",
        **{c: f"COALESCE(NULLIF(EXCLUDED.{c}, ''), c.{c})" for c in (email, zone, locale)},
    }
    updated_at = _column(next(f for f in defaulted if f.name == "updated_at"))
    contacts = (
        f"contacts AS (INSERT INTO {table} AS c ({', '.join(columns)}) "
        f"SELECT {', '.join(inserted + ['%s'] * len(defaulted))} FROM merged AS r ORDER BY r.{user_id} "
        f"ON CONFLICT ({user_id}) DO UPDATE SET "
        + ", ".join(f"{c} = {value}" for c, value in update.items())
        + f", {updated_at} = EXCLUDED.{updated_at} "
        f"WHERE ({', '.join(update.values())}) IS DISTINCT FROM ({', '.join(f'c.{c}' for c in update)}))"
    )
    return f"{facts}, {merged}, {contacts}"


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
