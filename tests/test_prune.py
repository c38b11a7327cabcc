"""Retention: expired keys, old events and old provider events go; what guards a duplicate stays."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from campaigns.models import Decision, DedupePolicy, IdempotencyKey, ProviderEvent, Send
from campaigns.sending.retention import records_prune
from events.models import Event
from tests import baker_recipes
from tests.conftest import identify, run_worker
from tests.steps import dispatch_once
from tests.world import T0, decisions, rule_make, track_at


def post_at(api, at, *messages):
    with time_machine.travel(at, tick=False):
        api.batch(list(messages))
    run_worker(at=at)


def test_a_per_user_day_key_outlives_the_day_and_still_stops_a_late_duplicate(api, sendgrid, settings):
    rule_make("browse", "product_viewed", dedupe_policy=DedupePolicy.PER_USER_DAY)
    post_at(api, T0, identify("u1", "u1@example.com"), track_at("product_viewed", "u1", T0))
    [key] = IdempotencyKey.objects.all()

    next_day = T0 + timedelta(days=1)
    records_prune(now=next_day)
    assert IdempotencyKey.objects.filter(pk=key.pk).exists()
    # A second view that happened on the first day arrives late, the next day: still a duplicate.
    post_at(api, next_day, track_at("product_viewed", "u1", T0 + timedelta(hours=5)))
    assert [r for _, r in decisions()] == ["scheduled", "duplicate"]
    assert list(sendgrid.keys().values()) == [1]

    records_prune(now=T0 + timedelta(days=settings.IDEMPOTENCY_KEY_DAYS, minutes=1))
    assert not IdempotencyKey.objects.exists()


def test_once_per_user_keys_are_never_pruned(api, sendgrid):
    rule_make("first order", "order_completed", dedupe_policy=DedupePolicy.ONCE_PER_USER)
    post_at(api, T0, identify("u1", "u1@example.com"), track_at("order_completed", "u1", T0))
    assert IdempotencyKey.objects.get().expires_at is None

    records_prune(now=T0 + timedelta(days=3650))

    assert IdempotencyKey.objects.count() == 1


def test_old_processed_events_go_with_their_decisions_and_their_sends_stay(api, sendgrid, settings):
    rule_make("welcome", "user_signup")
    post_at(api, T0, identify("u1", "u1@example.com"), track_at("user_signup", "u1", T0))
    recent = T0 + timedelta(days=settings.EVENT_RETENTION_DAYS)
    post_at(api, recent, track_at("page_viewed", "u1", recent))
    send = Send.objects.get()
    assert Decision.objects.count() == 1

    pruned = records_prune(now=T0 + timedelta(days=settings.EVENT_RETENTION_DAYS, seconds=1))

    assert pruned["events"] == 2  # the identify and the signup of day 0
    assert list(Event.objects.values_list("name", flat=True)) == ["page_viewed"]
    assert not Decision.objects.exists()
    send.refresh_from_db()
    assert (send.state, send.event_id) == ("sent", None)


def test_unprocessed_events_are_kept_however_old(api):
    with time_machine.travel(T0, tick=False):
        api.batch([track_at("user_signup", "u1", T0)])

    records_prune(now=T0 + timedelta(days=3650))

    assert Event.objects.count() == 1


def test_it_deletes_in_batches_until_nothing_is_left(db):
    now = timezone.now()
    IdempotencyKey.objects.bulk_create(
        [IdempotencyKey(key=f"k{i}", expires_at=now - timedelta(days=1)) for i in range(7)]
        + [IdempotencyKey(key="live", expires_at=now + timedelta(days=1))]
    )

    assert records_prune(now=now, batch=3)["idempotency_keys"] == 7

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["live"]


def test_old_provider_events_are_pruned(db, settings):
    # received_at is set on insert only (on PostgreSQL it is the partition key).
    with time_machine.travel(timezone.now() - timedelta(days=91)):
        baker_recipes.provider_event.make(event_id="old")
    baker_recipes.provider_event.make(event_id="new")

    assert records_prune(now=timezone.now())["provider_events"] == 1

    assert list(ProviderEvent.objects.values_list("event_id", flat=True)) == ["new"]


def test_the_prune_command_says_what_it_deleted(db, capsys):
    baker_recipes.idempotency_key.make(expires_at=timezone.now() - timedelta(seconds=1))

    call_command("prune")

    assert (
        capsys.readouterr().out.strip()
        == "1 idempotency keys, 0 events, 0 provider events, 0 message keys, 0 provider event keys, "
        "0 partitions deleted"
    )
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize(("prune", "left"), [(False, 1), (True, 0)])
def test_the_dispatcher_prunes_when_asked(db, prune, left):
    baker_recipes.idempotency_key.make(expires_at=timezone.now() - timedelta(seconds=1))

    dispatch_once(now=timezone.now(), slow_checks=False, prune=prune)

    assert IdempotencyKey.objects.count() == left
