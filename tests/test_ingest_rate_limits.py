"""Rate limits per write key: over its burst a key gets 429 + Retry-After and nothing is stored,
other keys are not affected, and the key is let in again once its bucket refills.

Run against both stores: the database (the default without Redis) and the local Redis. Time is
moved with time-machine, never waited for.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from events.models import Event, WriteKey
from tests.conftest import Api, track

pytestmark = pytest.mark.django_db

START = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(params=["database", "redis"])
def store(request: pytest.FixtureRequest, settings: Any) -> str:
    settings.INGEST_RATE_LIMIT_ENABLED = True
    settings.INGEST_RATE_LIMIT_STORE = request.param
    # A prefix of this test's own, so other runs sharing the Redis never count against it.
    settings.INGEST_RATE_LIMIT_REDIS_PREFIX = f"test-{uuid.uuid4().hex}:"
    return str(request.param)


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    # tick=False: the clock stands still unless a test moves it, so a burst is truly "at once".
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def limited_key(client: Any, *, rate: float | None = None, burst: int | None = None) -> tuple[WriteKey, Api]:
    key, raw = WriteKey.issue(name=f"key {uuid.uuid4().hex[:6]}", rate_limit=rate, rate_burst=burst)
    return key, Api(client, raw)


def post_track(api: Api, message_id: str) -> Any:
    return api.batch([track("cart_viewed", "u1", message_id=message_id)])


def test_a_key_over_its_burst_gets_429_with_retry_after_and_another_key_still_gets_200(store, clock, client):
    _, flooding = limited_key(client, rate=1, burst=3)
    _, quiet = limited_key(client, rate=1, burst=3)

    answers = [post_track(flooding, f"flood-{n}").status_code for n in range(5)]
    refused = post_track(flooding, "flood-5")

    assert answers == [200, 200, 200, 429, 429]
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    assert refused.json() == {
        "success": False,
        "errors": [
            {
                "field": "writeKey",
                "reason": "this write key is over its limit of 1 requests/s with bursts of 3; retry after 1 s",
            }
        ],
    }
    assert post_track(quiet, "quiet-1").status_code == 200


def test_a_refused_request_stores_nothing_and_its_retry_is_stored_once(store, clock, client):
    _, api = limited_key(client, rate=0.5, burst=1)
    assert post_track(api, "first").status_code == 200

    refused = post_track(api, "second")
    assert refused.status_code == 429
    assert list(Event.objects.values_list("message_id", flat=True)) == ["first"]

    # One request every 2 s: the retry fits once Retry-After has passed, as an SDK would wait.
    clock.shift(timedelta(seconds=int(refused["Retry-After"])))
    assert post_track(api, "second").status_code == 200
    assert sorted(Event.objects.values_list("message_id", flat=True)) == ["first", "second"]


def test_retry_after_says_how_long_until_a_request_fits(store, clock, client):
    _, api = limited_key(client, rate=0.1, burst=2)
    assert [post_track(api, f"m-{n}").status_code for n in range(2)] == [200, 200]

    # One request per 10 s, both places taken at once: the next fits 10 s later.
    assert post_track(api, "m-2")["Retry-After"] == "10"
    clock.shift(timedelta(seconds=4))
    assert post_track(api, "m-2")["Retry-After"] == "6"
    clock.shift(timedelta(seconds=6))
    assert post_track(api, "m-2").status_code == 200


def test_the_bucket_refills_at_the_key_s_rate(store, clock, client):
    _, api = limited_key(client, rate=2, burst=2)
    assert [post_track(api, f"a-{n}").status_code for n in range(3)] == [200, 200, 429]

    # Two requests a second: after one second, two fit again and a third does not.
    clock.shift(timedelta(seconds=1))
    assert [post_track(api, f"b-{n}").status_code for n in range(3)] == [200, 200, 429]


def test_keys_without_limits_of_their_own_take_the_settings(store, clock, client, settings):
    settings.INGEST_RATE_LIMIT = 1.0
    settings.INGEST_RATE_BURST = 2
    _, api = limited_key(client)

    assert [post_track(api, f"m-{n}").status_code for n in range(3)] == [200, 200, 429]


def test_turning_limits_off_lets_every_request_in(store, clock, client, settings):
    settings.INGEST_RATE_LIMIT_ENABLED = False
    _, api = limited_key(client, rate=1, burst=1)

    assert [post_track(api, f"m-{n}").status_code for n in range(5)] == [200] * 5


def test_refused_bodies_count_against_the_key_too(store, clock, client):
    _, api = limited_key(client, rate=1, burst=2)
    not_json = [api.post("/v1/batch", b"not json").status_code for _ in range(2)]

    assert not_json == [415, 415]
    assert post_track(api, "m-1").status_code == 429


def test_every_ingest_endpoint_is_limited(store, clock, client):
    _, api = limited_key(client, rate=1, burst=1)
    assert api.post("/v1/track", track("cart_viewed", "u1", message_id="t-1")).status_code == 200

    assert api.post("/v1/track", track("cart_viewed", "u1", message_id="t-2")).status_code == 429
    assert api.post("/v1/identify", {"userId": "u1", "traits": {"plan": "pro"}}).status_code == 429
    assert post_track(api, "b-1").status_code == 429


def test_with_redis_down_the_ingest_goes_on_without_limits(clock, client, settings):
    settings.INGEST_RATE_LIMIT_STORE = "redis"
    settings.INGEST_RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:1/0"
    from events.ratelimit import _redis_script

    _redis_script.cache_clear()
    try:
        _, api = limited_key(client, rate=1, burst=1)
        assert [post_track(api, f"m-{n}").status_code for n in range(3)] == [200, 200, 200]
    finally:
        _redis_script.cache_clear()


def _statuses_from_threads(raw: str, *, each: int, workers: int = 8) -> list[int]:
    """Every answer when `workers` threads post `each` track calls with the key at once, sorted."""
    from django.test import Client

    from tests.test_concurrency import in_parallel

    statuses: list[int] = []

    def post(worker: int) -> None:
        api = Api(Client(), raw)
        statuses.extend(post_track(api, f"w{worker}-{n}").status_code for n in range(each))

    assert in_parallel(post, workers=workers) == []
    return sorted(statuses)


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_of_one_key_never_take_more_than_its_burst(store, clock):
    key, raw = WriteKey.issue(name="shared by several hosts", rate_limit=0.001, rate_burst=10)

    assert _statuses_from_threads(raw, each=5) == [200] * 10 + [429] * 30
    assert Event.objects.filter(source=key).count() == 10


def test_a_refused_key_is_refused_again_without_asking_the_store(clock, client, settings, django_assert_num_queries):
    settings.INGEST_RATE_LIMIT_STORE = "database"
    _, api = limited_key(client, rate=1, burst=1)
    assert post_track(api, "m-1").status_code == 200
    assert post_track(api, "m-2").status_code == 429

    # Until the key's bucket refills no host could let it in: no query at all.
    with django_assert_num_queries(0):
        assert post_track(api, "m-3").status_code == 429
    clock.shift(timedelta(seconds=1))
    assert post_track(api, "m-3").status_code == 200


def test_a_flood_of_429s_does_not_flood_the_log(clock, client, settings, caplog):
    settings.INGEST_RATE_LIMIT_STORE = "database"
    _, api = limited_key(client, rate=1, burst=1)
    post_track(api, "m-1")

    with caplog.at_level("WARNING", logger="django.request"):
        assert [post_track(api, f"m-{n}").status_code for n in range(2, 12)] == [429] * 10

    assert not [r for r in caplog.records if r.name == "django.request"]


def test_a_limit_raised_in_admin_applies_once_the_refusal_it_was_told_ends(clock, client, settings):
    settings.INGEST_RATE_LIMIT_STORE = "database"
    # The key's row is read on every request here: this is about the refusal's bound alone. The
    # write-key cache adds its own (WRITE_KEY_CACHE_SECONDS, tests/test_write_key_cache.py).
    settings.WRITE_KEY_CACHE_SECONDS = 0
    key, api = limited_key(client, rate=0.5, burst=1)
    assert post_track(api, "m-1").status_code == 200
    assert post_track(api, "m-2")["Retry-After"] == "2"

    WriteKey.objects.filter(pk=key.pk).update(rate_limit=100, rate_burst=100)
    clock.shift(timedelta(milliseconds=900))
    assert post_track(api, "m-2").status_code == 429  # remembered, at most its Retry-After
    clock.shift(timedelta(milliseconds=1100))
    assert [post_track(api, f"m-{n}").status_code for n in range(2, 7)] == [200] * 5


def test_a_key_revoked_while_refused_is_unauthorized_once_the_refusal_ends(clock, client, settings, key_cache_clock):
    settings.INGEST_RATE_LIMIT_STORE = "database"
    key, api = limited_key(client, rate=0.5, burst=1)
    post_track(api, "m-1")
    assert post_track(api, "m-2").status_code == 429

    WriteKey.objects.filter(pk=key.pk).update(revoked_at=START)
    assert post_track(api, "m-2").status_code == 429
    clock.shift(timedelta(seconds=2))
    key_cache_clock(settings.WRITE_KEY_CACHE_SECONDS)  # and the process has read the key's row anew
    assert post_track(api, "m-2").status_code == 401


def test_a_refused_key_is_refused_from_memory_for_at_least_half_its_retry_after(store, clock, client):
    # 50/s: the next request would fit 20 ms later, but the client was told "1 s", and this
    # process answers the key from memory for at least half of it; by its end the store decides.
    _, api = limited_key(client, rate=50, burst=1)
    assert post_track(api, "m-1").status_code == 200
    assert post_track(api, "m-2")["Retry-After"] == "1"
    clock.shift(timedelta(milliseconds=450))
    assert post_track(api, "m-2")["Retry-After"] == "1"
    clock.shift(timedelta(milliseconds=550))
    assert [post_track(api, f"m-{n}").status_code for n in (2, 3)] == [200, 429]


# --- Leases: a busy key's places taken from the shared bucket ahead (INGEST_RATE_LEASE_SECONDS) --


def _bucket_statements(queries: list[dict[str, Any]]) -> int:
    return sum("events_ratebucket" in query["sql"] for query in queries)


@pytest.mark.parametrize(("lease_seconds", "most_takes"), [(0, 300), (0.1, 20)])
def test_a_busy_key_takes_places_from_the_store_a_lease_at_a_time(clock, client, settings, lease_seconds, most_takes):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.INGEST_RATE_LIMIT_STORE = "database"
    settings.INGEST_RATE_LEASE_SECONDS = lease_seconds
    key, api = limited_key(client, rate=1000, burst=1000)

    with CaptureQueriesContext(connection) as queries:
        answers = [post_track(api, f"m-{n}").status_code for n in range(300)]

    assert answers == [200] * 300
    assert Event.objects.filter(source=key).count() == 300
    takes = _bucket_statements(queries.captured_queries)
    # Without leases one take per request; with them the lease doubles up to a tenth of the burst.
    assert takes == 300 if lease_seconds == 0 else 1 <= takes <= most_takes


def test_leases_never_let_a_key_past_its_burst(store, clock, client):
    _, api = limited_key(client, rate=1, burst=100)

    answers = [post_track(api, f"m-{n}").status_code for n in range(130)]

    # Leases of up to 10 places; when the last one does not fit, one place per take again.
    assert answers == [200] * 100 + [429] * 30


def test_leased_places_unused_lapse_and_are_not_used_later(store, clock, client):
    key, api = limited_key(client, rate=1, burst=100)
    assert [post_track(api, f"m-{n}").status_code for n in range(20)] == [200] * 20

    clock.shift(timedelta(seconds=1))  # ten lease windows: whatever this process holds has lapsed
    answers = [post_track(api, f"n-{n}").status_code for n in range(100)]

    # 20 let in, up to a lease (9 places) lapsed, 1 place refilled: never more than 101 in all.
    admitted = 20 + answers.count(200)
    assert 101 - 9 <= admitted <= 101
    assert answers == [200] * answers.count(200) + [429] * answers.count(429)
    assert Event.objects.filter(source=key).count() == admitted


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_leases_take_exactly_the_burst(store, clock):
    key, raw = WriteKey.issue(name="busy, several threads", rate_limit=0.001, rate_burst=200)

    # Every place taken ahead is used by a thread of this process before any request is refused.
    assert _statuses_from_threads(raw, each=40) == [200] * 200 + [429] * 120
    assert Event.objects.filter(source=key).count() == 200


def test_a_request_waits_for_a_take_under_way_and_uses_its_places(clock, settings, monkeypatch):
    import threading
    import time

    from events import ratelimit

    settings.INGEST_RATE_LIMIT_ENABLED = True
    key, _ = WriteKey.issue(name="one take at a time", rate_limit=1, rate_burst=100)
    store_takes: list[tuple[Any, ...]] = []
    real_take, real_use = ratelimit._store_take, ratelimit._LEASES.use
    counted = threading.Event()

    def store_take(*args: Any) -> float | None:
        store_takes.append(args)
        return real_take(*args)

    def use(*args: Any) -> bool:
        used = real_use(*args)
        counted.set()
        return used

    monkeypatch.setattr(ratelimit, "_store_take", store_take)
    monkeypatch.setattr(ratelimit._LEASES, "use", use)

    # Another thread of this process is taking a lease for the key (it holds the key's lock) when
    # a request comes that finds no place here: the request waits and takes one of those places.
    now = time.time()  # the clock stands still
    taking = ratelimit._LEASES.taking(key.key_hash)
    with taking:
        waiting = threading.Thread(target=ratelimit.rate_limit_take, args=(key,))
        waiting.start()
        assert counted.wait(timeout=10)
        ratelimit._LEASES.grant(key.key_hash, 5, now, settings.INGEST_RATE_LEASE_SECONDS)
    waiting.join(timeout=10)

    assert not waiting.is_alive()
    assert store_takes == []  # without the wait, its own take: a refusal could strand the places
    assert ratelimit._LEASES.place(key.key_hash, now)  # and the other four are still here
