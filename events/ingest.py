"""Storing accepted messages: one transaction per request, deduplicated by messageId."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone as django_timezone

from events.models import Contact, Event, WriteKey
from events.parsing import Message
from triggermail.queue import enqueue

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
    """Commit the messages (those not seen before) and their contacts' traits, then queue matching.

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
            enqueue("events.tasks.events_process")
    return IngestResult(accepted=len(new_ids), duplicates=len(messages) - len(new_ids))


def _db_value(field_name: str, value: Any) -> Any:
    return Event._meta.get_field(field_name).get_db_prep_save(value, connection)


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
    updates: dict[str, _ContactUpdate] = {}
    for m in sorted(messages, key=lambda m: m.occurred_at):
        timezone = m.traits.get("timezone") or m.context.get("timezone")
        locale = m.traits.get("locale") or m.context.get("locale")
        if not (m.traits or timezone or locale):
            continue
        update = updates.setdefault(m.user_id, _ContactUpdate(traits={}))
        update.traits.update(m.traits)
        if m.traits.get("email"):
            update.email = str(m.traits["email"])
        if isinstance(timezone, str) and timezone:
            update.timezone = timezone[:64]
        if isinstance(locale, str) and locale:
            update.locale = locale[:35]
    return updates


def contacts_upsert(messages: Sequence[Message]) -> None:
    """Merge identify traits (and track calls' context.traits) into contacts, in time order."""
    updates = _contact_updates(messages)
    if not updates:
        return
    user_ids = sorted(updates)
    # Lock in a fixed order so two requests touching the same contacts cannot deadlock.
    existing = {
        c.user_id: c for c in Contact.objects.select_for_update().filter(user_id__in=user_ids).order_by("user_id")
    }
    missing = [uid for uid in user_ids if uid not in existing]
    for user_id in missing:
        try:
            with transaction.atomic():
                existing[user_id] = Contact.objects.create(user_id=user_id)
        except IntegrityError:
            # Another request created it since our read; take its row, locked.
            existing[user_id] = Contact.objects.select_for_update().get(user_id=user_id)
    changed, now = [], django_timezone.now()
    for user_id in user_ids:
        contact, update = existing[user_id], updates[user_id]
        contact.traits = {**contact.traits, **update.traits}
        contact.email = update.email if update.email is not None else contact.email
        contact.timezone = update.timezone if update.timezone is not None else contact.timezone
        contact.locale = update.locale if update.locale is not None else contact.locale
        contact.updated_at = now
        changed.append(contact)
    Contact.objects.bulk_update(changed, ["traits", "email", "timezone", "locale", "updated_at"])
