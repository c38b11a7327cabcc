"""triggermail.bulk on both databases: what one INSERT … ON CONFLICT DO NOTHING RETURNING and one
UPDATE … FROM its rows write is what the ORM reads back, cell for cell, whatever the values hold
(on PostgreSQL the rows travel as one JSON document: quotes, unicode, microseconds, decimals)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from campaigns.models import Send
from tests import baker_recipes
from triggermail.bulk import insert_new_returning, update_from_values

pytestmark = pytest.mark.django_db

AWKWARD_TEXTS = ["quote \" and ' and \\ backslash", "new\nline\ttab", "é ü ß 中文 😀 \u2028", "", "{1,2}", "NULL"]
WHEN = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC)


def _sends(count: int) -> list[Send]:
    rule, contact = baker_recipes.rule.make(), baker_recipes.contact.make()
    return [
        Send(
            rule=rule,
            contact=contact,
            triggered_at=WHEN + timedelta(microseconds=i),
            due_at=WHEN + timedelta(days=i, seconds=1),
            dedupe_key=f"bulk-{i}",
            reason=AWKWARD_TEXTS[i % len(AWKWARD_TEXTS)],
            last_error=AWKWARD_TEXTS[-1 - i % len(AWKWARD_TEXTS)] * 3,
            attempts=i % 3,
            revenue=Decimal("1234567.89") if i % 2 else None,
            sent_at=None if i % 2 else WHEN,
        )
        for i in range(count)
    ]


def test_inserted_rows_read_back_cell_for_cell_and_a_taken_key_is_skipped():
    sends = _sends(12)
    new = insert_new_returning(sends, returning=["pk", "dedupe_key"])
    assert [key for _, key in new] == [s.dedupe_key for s in sends]
    stored = {s.dedupe_key: s for s in Send.objects.all()}
    for send in sends:
        read = stored[send.dedupe_key]
        assert (read.triggered_at, read.due_at, read.sent_at) == (send.triggered_at, send.due_at, send.sent_at)
        assert (read.reason, read.last_error, read.attempts, read.revenue) == (
            send.reason,
            send.last_error,
            send.attempts,
            send.revenue,
        )
        assert read.created_at is not None and read.state == Send.State.SCHEDULED
    # The same keys again, with one new one: only the new one is inserted and returned.
    again = _sends(13)
    assert insert_new_returning(again, returning=["dedupe_key"], conflict=[]) == [("bulk-12",)]


def test_an_update_writes_each_rows_own_values():
    sends = _sends(6)
    ids = [pk for (pk,) in insert_new_returning(sends, returning=["pk"])]
    rows = [
        (pk, Send.State.SENT, AWKWARD_TEXTS[i], WHEN + timedelta(hours=i, microseconds=7), Decimal(f"{i}.05"))
        for i, pk in enumerate(ids)
    ]
    assert update_from_values(Send, rows, fields=["state", "reason", "sent_at", "revenue"]) == len(ids)
    read = {s.pk: s for s in Send.objects.filter(pk__in=ids)}
    for pk, state, reason, sent_at, revenue in rows:
        assert (read[pk].state, read[pk].reason, read[pk].sent_at, read[pk].revenue) == (
            state,
            reason,
            sent_at,
            revenue,
        )
