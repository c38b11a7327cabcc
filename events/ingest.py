"""Storing accepted messages: one transaction per request, deduplicated by messageId."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone as django_timezone

from events.models import Contact, Event, WriteKey
from events.parsing import Message
from triggermail.wakeup import events_arrived

_INSERT_CHUNK = 500
_EVENT_COLUMNS = (
    "message_id", "type", "name", "user_id", "anonymous_id", "properties", "traits", "context",
    "occurred_at", "received_at", "source_id",
)  # fmt: skip


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


def events_ingest(*, source: WriteKey, messages: Sequence[Message], received_at: datetime) -> IngestResult:
    """Commit the messages (those not seen before) and their contacts' traits, then wake the matching.

    Returns only after the commit, so a 200 answer means the events are stored.
    """
    if not messages:
        return IngestResult(accepted=0, duplicates=0)
    with transaction.atomic():
        new_ids = _events_insert(source, messages, received_at)
        # A retried message must not re-apply old traits over newer ones: only new messages count.
        fresh = [m for m in messages if m.message_id in new_ids]
        contacts_upsert(fresh)
        if fresh:
            events_arrived()
    return IngestResult(accepted=len(new_ids), duplicates=len(messages) - len(new_ids))


def _db_value(field_name: str, value: Any) -> Any:
    # The raw INSERT below bypasses the ORM, so each value is adapted as the ORM would (JSON, time zone).
    model_field = Event._meta.get_field(field_name)
    assert isinstance(model_field, models.Field)
    return model_field.get_db_prep_save(value, connection)


def _events_insert(source: WriteKey, messages: Sequence[Message], received_at: datetime) -> set[str]:
    """INSERT ... ON CONFLICT (message_id) DO NOTHING RETURNING: the ids that were new."""
    # Within one request a repeated messageId would conflict with itself; keep the first.
    unique = list({m.message_id: m for m in reversed(messages)}.values())[::-1]
    table = connection.ops.quote_name(Event._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _EVENT_COLUMNS)
    row = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
    new_ids: set[str] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(unique), _INSERT_CHUNK):
            chunk = unique[start : start + _INSERT_CHUNK]
            params: list[Any] = []
            for m in chunk:
                params += [
                    m.message_id, m.type, m.name, m.user_id, m.anonymous_id,
                    _db_value("properties", m.properties), _db_value("traits", m.traits),
                    _db_value("context", m.context), _db_value("occurred_at", m.occurred_at),
                    _db_value("received_at", received_at), source.pk,
                ]  # fmt: skip
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(chunk))} "
                f"ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
                params,
            )
            new_ids.update(r[0] for r in cursor.fetchall())
    return new_ids


@dataclass
class _ContactUpdate:
    traits: dict[str, Any]
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


def _contacts_lock(user_ids: Sequence[str]) -> dict[str, Contact]:
    # Lock in a fixed order so two requests touching the same contacts cannot deadlock.
    contacts = Contact.objects.select_for_update().filter(user_id__in=user_ids).order_by("user_id")
    return {c.user_id: c for c in contacts}


def contacts_upsert(messages: Sequence[Message]) -> None:
    """Merge identify traits (and other calls' context.traits) into contacts, in time order.

    A fixed number of queries whatever the number of messages: lock the existing contacts,
    insert the missing ones (ON CONFLICT DO NOTHING, as a concurrent request may be inserting
    them too), lock those, and write every change in one bulk update.
    """
    updates = _contact_updates(messages)
    if not updates:
        return
    user_ids = sorted(updates)
    existing = _contacts_lock(user_ids)
    missing = [uid for uid in user_ids if uid not in existing]
    if missing:
        Contact.objects.bulk_create([Contact(user_id=uid) for uid in missing], ignore_conflicts=True)
        existing.update(_contacts_lock(missing))
    now = django_timezone.now()
    for user_id in user_ids:
        contact, update = existing[user_id], updates[user_id]
        contact.traits = {**(contact.traits if isinstance(contact.traits, dict) else {}), **update.traits}
        contact.email = update.email if update.email is not None else contact.email
        contact.timezone = update.timezone if update.timezone is not None else contact.timezone
        contact.locale = update.locale if update.locale is not None else contact.locale
        contact.updated_at = now
    Contact.objects.bulk_update(
        [existing[uid] for uid in user_ids], ["traits", "email", "timezone", "locale", "updated_at"]
    )
