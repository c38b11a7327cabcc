"""Time-partitioned history on PostgreSQL (triggermail.partitions, campaigns migration 0018): days
made ahead, rows in their day, retention by dropping whole days, and uniqueness kept across days."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import time_machine
from django.db import DatabaseError, connection, connections
from django.utils import timezone

from campaigns.models import Decision, ProviderEvent, Send, Suppression
from campaigns.sending.retention import records_prune
from events.ingest import events_ingest
from events.models import Event, WriteKey
from events.parsing import batch_parse
from tests import baker_recipes
from tests.conftest import identify, run_worker
from tests.world import post_at, rule_make, track_at
from triggermail.partitions import (
    PARTITIONED_TABLES,
    default_partition_name,
    partition_name,
    partitions_drop_before,
    partitions_ensure,
)

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitioning is PostgreSQL's; SQLite keeps plain tables"
)

# A day long past, so that no partition made by `migrate` (today and the days ahead) holds it.
D = datetime(2026, 3, 2, tzinfo=UTC)


def _partition_of(model: type, pk: int) -> str:
    table = model._meta.db_table  # type: ignore[attr-defined]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def _days_of(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [table],
        )
        return {name for (name,) in cursor.fetchall()}


def test_migrate_makes_today_and_the_days_ahead_and_ensure_makes_the_rest_once(db, settings):
    today = timezone.now().astimezone(UTC).date()
    for table in PARTITIONED_TABLES:
        made = _days_of(table)
        assert default_partition_name(table) in made
        assert {
            partition_name(table, today + timedelta(days=n)) for n in range(settings.PARTITION_AHEAD_DAYS + 1)
        } <= made

    created = partitions_ensure(since=D, until=D + timedelta(days=1, hours=3))

    assert sorted(created) == sorted(
        partition_name(table, (D + timedelta(days=n)).date()) for table in PARTITIONED_TABLES for n in (0, 1)
    )
    assert partitions_ensure(since=D, until=D + timedelta(days=1)) == []


def test_an_event_lands_in_the_day_it_was_received_at_either_side_of_midnight(api):
    partitions_ensure(since=D, until=D + timedelta(days=1))
    midnight = D + timedelta(days=1)
    post_at(api, midnight - timedelta(microseconds=1), [track_at("viewed", "u1", D, message_id="before")])
    post_at(api, midnight, [track_at("viewed", "u1", D, message_id="at")])

    before, at = (Event.objects.get(message_id=m) for m in ("before", "at"))

    assert _partition_of(Event, before.pk) == partition_name("events_event", D.date())
    assert _partition_of(Event, at.pk) == partition_name("events_event", midnight.date())


def test_an_event_of_a_day_without_partition_waits_in_default_and_moves_when_the_day_is_made(api):
    post_at(api, D, [track_at("viewed", "u1", D, message_id="early")])
    event = Event.objects.get()
    assert _partition_of(Event, event.pk) == default_partition_name("events_event")

    assert partition_name("events_event", D.date()) in partitions_ensure(since=D, until=D)

    assert _partition_of(Event, event.pk) == partition_name("events_event", D.date())
    assert Event.objects.get(pk=event.pk).message_id == "early"


def test_the_same_message_id_either_side_of_a_day_boundary_is_stored_once(api):
    partitions_ensure(since=D, until=D + timedelta(days=1))
    midnight = D + timedelta(days=1)
    post_at(api, midnight - timedelta(seconds=1), [track_at("viewed", "u1", D, message_id="m-1")])

    with time_machine.travel(midnight + timedelta(seconds=1), tick=False):
        answer = api.batch([track_at("viewed", "u1", D, message_id="m-1")])

    assert answer.status_code == 200
    assert Event.objects.filter(message_id="m-1").count() == 1
    assert _partition_of(Event, Event.objects.get().pk) == partition_name("events_event", D.date())


def test_a_message_id_is_remembered_for_the_dedupe_window_then_forgotten(api, settings):
    settings.MESSAGE_DEDUPE_DAYS = 2
    post_at(api, D, [track_at("viewed", "u1", D, message_id="m-1")])
    run_worker(at=D)

    records_prune(now=D + timedelta(days=1))
    post_at(api, D + timedelta(days=1), [track_at("viewed", "u1", D, message_id="m-1")])
    assert Event.objects.count() == 1

    assert records_prune(now=D + timedelta(days=2, seconds=1))["message_keys"] == 1
    post_at(api, D + timedelta(days=2, seconds=1), [track_at("viewed", "u1", D, message_id="m-1")])
    assert Event.objects.count() == 2


def test_concurrent_requests_posting_the_same_message_ids_store_each_once(transactional_db):
    source, _ = WriteKey.issue(name="threads")
    now = timezone.now()
    body = {"batch": [{"type": "track", "event": "viewed", "userId": "u1", "messageId": f"m-{i}"} for i in range(200)]}
    messages, errors = batch_parse(body, received_at=now)
    assert not errors
    start = threading.Barrier(4)
    accepted: list[int] = []

    def post() -> None:
        try:
            start.wait(timeout=10)
            accepted.append(events_ingest(source=source, messages=messages, received_at=now).accepted)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(accepted) == 4 and sum(accepted) == 200
    assert Event.objects.count() == 200
    assert Event.objects.values("message_id").distinct().count() == 200


def test_a_redelivered_provider_event_on_another_day_is_recorded_once(db):
    baker_recipes.provider_event.make(event_id="sg-1")

    with time_machine.travel(timezone.now() + timedelta(days=2)), pytest.raises(DatabaseError, match="sg-1"):
        baker_recipes.provider_event.make(event_id="sg-1")


def test_received_at_never_changes(db):
    provider_event = baker_recipes.provider_event.make()

    with pytest.raises(DatabaseError, match="partition key"):
        ProviderEvent.objects.filter(pk=provider_event.pk).update(received_at=D)


def _xmin(send: Send) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM campaigns_send WHERE id = %s", [send.pk])
        return cursor.fetchone()[0]


def test_retention_drops_whole_days_and_the_sends_of_their_events_stay_readable(api, sendgrid, settings, admin_client):
    settings.EVENT_RETENTION_DAYS = 1
    partitions_ensure(since=D, until=D + timedelta(days=3))
    rule_make("welcome", "user_signup")
    post_at(api, D, [identify("u1", "u1@example.com"), track_at("user_signup", "u1", D)])
    run_worker(at=D)
    send = Send.objects.get()
    with time_machine.travel(D, tick=False):
        old_provider_event = baker_recipes.provider_event.make(event_id="old", send=send)
    Suppression.objects.create(email="u1@example.com", reason="bounce", provider_event=old_provider_event)
    newer = D + timedelta(days=2)
    post_at(api, newer, [track_at("page_viewed", "u1", newer)])
    run_worker(at=newer)
    written = _xmin(send)

    pruned = records_prune(now=D + timedelta(days=2, hours=1))

    assert pruned["partitions"] == 3  # the day's events, its events' decisions, its provider events
    assert not _days_of("events_event") & {partition_name("events_event", D.date())}
    assert list(Event.objects.values_list("name", flat=True)) == ["page_viewed"]
    assert not Decision.objects.exists() and not ProviderEvent.objects.exists()
    # The drop wrote no row outside the day: the send keeps its event's id, and reads it as gone.
    assert _xmin(send) == written
    kept = Send.objects.select_related("event").get()
    assert (kept.state, kept.event_id, kept.event) == ("sent", send.event_id, None)
    page = admin_client.get(f"/admin/campaigns/send/{send.pk}/change/")
    assert f"#{send.event_id}, past retention" in page.content.decode()
    assert Suppression.objects.get().provider_event_id is None


def test_a_send_whose_event_day_was_dropped_still_goes_out(api, sendgrid, settings):
    settings.EVENT_RETENTION_DAYS = 1
    partitions_ensure(since=D, until=D + timedelta(days=4))
    rule_make("later", "user_signup", delay=timedelta(days=3))
    post_at(api, D, [identify("u1", "u1@example.com"), track_at("user_signup", "u1", D)])
    run_worker(at=D)
    assert Send.objects.get().state == "scheduled"

    assert partition_name("events_event", D.date()) in partitions_drop_before(before=D + timedelta(days=2))
    run_worker(at=D + timedelta(days=3, minutes=1))

    send = Send.objects.select_related("event").get()
    assert (send.state, send.event) == ("sent", None)
    assert list(sendgrid.sends().values()) == [1]


def test_a_day_holding_an_unprocessed_event_is_kept(api):
    partitions_ensure(since=D, until=D)
    post_at(api, D, [track_at("viewed", "u1", D)])

    assert partition_name("events_event", D.date()) not in partitions_drop_before(before=D + timedelta(days=30))

    assert Event.objects.count() == 1
    run_worker(at=D)
    assert partition_name("events_event", D.date()) in partitions_drop_before(before=D + timedelta(days=30))
    assert not Event.objects.exists()


def test_a_decision_lives_in_its_event_day(api):
    partitions_ensure(since=D, until=D + timedelta(days=1))
    rule_make("welcome", "user_signup")
    post_at(api, D + timedelta(hours=23, minutes=59), [track_at("user_signup", "u1", D)])
    # Matched after midnight: the decision still belongs to its event's day.
    run_worker(at=D + timedelta(days=1, minutes=1))

    decision = Decision.objects.get()

    assert decision.event_received_at == decision.event.received_at
    assert _partition_of(Decision, decision.pk) == partition_name("campaigns_decision", D.date())


def test_a_day_waits_for_the_next_call_while_a_long_transaction_holds_the_default_partition(transactional_db):
    # Committed DDL outlives the test: a day of its own, dropped at the end, so that no other test
    # (tests.world.T0 is D) finds partitions it did not make.
    day = datetime(2024, 6, 3, tzinfo=UTC)
    try:
        with psycopg.connect(**connection.get_connection_params()) as other:
            other.execute("SELECT count(*) FROM events_event_default")  # a reader, its transaction left open

            created = partitions_ensure(since=day, until=day)  # gives up on events after lock_timeout

            assert partition_name("events_event", day.date()) not in created
            assert partition_name("campaigns_decision", day.date()) in created
            other.rollback()

        assert partitions_ensure(since=day, until=day) == [partition_name("events_event", day.date())]
    finally:
        with connection.cursor() as cursor:
            for table in PARTITIONED_TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {partition_name(table, day.date())}")
