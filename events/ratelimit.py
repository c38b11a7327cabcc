"""Rate limits per write key, shared by every web host: GCRA, kept in Redis or in the database.

GCRA (the generic cell rate algorithm) is a token bucket kept as one number per key, the
"theoretical arrival time" (TAT): when the key's bucket would be full again if it made no more
requests. A request at `now` is allowed when `max(TAT, now) + 1/rate - now <= burst/rate`, and
moves TAT forward by 1/rate. One number makes the check a single atomic step in either store:
a Lua script in Redis, a conditional UPDATE of the key's RateBucket row in the database.

Over the limit the request is refused before its body is stored (a 429 stores nothing), and
`Retry-After` says when one request will fit again; the SDKs wait and send the same batch.

The clock is this host's (`time.time()`), passed into the store: hosts run NTP, a skew of a few
milliseconds is a fraction of a request at any sane rate, and tests can move it with time-machine.

A busy key does not cost a store round trip per request: a web process that saw a key make many
requests in the last INGEST_RATE_LEASE_SECONDS takes that many places from the shared bucket in one
take (a lease; GCRA with a cost of n) and lets the next requests in from it. Every request let in
was counted in the shared bucket first, so a key never gets more than its limit; a leased place
unused after INGEST_RATE_LEASE_SECONDS lapses (the cost: a key at its limit may get a few requests
fewer, never more). Near the limit, when a lease does not fit, the process takes one place at a
time again, exactly as without leases.

In one process (gunicorn's threads), a key's takes from the store are made one at a time, under the
key's own lock: a request that finds no leased place waits for a take already under way and uses
the places it brought. So a process refuses a key only when it holds none of the key's places;
without the lock, a refusal noted while another thread's lease was on its way left that lease's
places unused until they lapsed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.db import connection

from events.models import RateBucket, WriteKey
from triggermail.refusals import refusal_active, refusal_note, refusal_reason

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    rate: float  # requests per second, on average
    burst: int  # requests at once

    def describe(self) -> str:
        return f"{self.rate:g} requests/s with bursts of {self.burst}"


class RateLimited(Exception):
    def __init__(self, key_id: int, limit: str, retry_after: int) -> None:
        super().__init__(refusal_reason(limit, retry_after))
        self.key_id = key_id
        self.limit = limit
        self.retry_after = retry_after


def write_key_limit(key: WriteKey) -> Limit | None:
    """The limit that applies to the key (its own values, else the settings'); None when off."""
    if not settings.INGEST_RATE_LIMIT_ENABLED:
        return None
    rate = key.rate_limit if key.rate_limit is not None else settings.INGEST_RATE_LIMIT
    burst = key.rate_burst if key.rate_burst is not None else settings.INGEST_RATE_BURST
    return Limit(rate=float(rate), burst=int(burst))


def rate_limit_refused(key_hash: str) -> None:
    """Raise RateLimited if this process already knows the key cannot fit now (triggermail.refusals:
    the web worker answers most such requests before Django; these are the rest)."""
    active = refusal_active(key_hash, time.time())
    if active is None or not settings.INGEST_RATE_LIMIT_ENABLED:
        return
    refusal, retry_after = active
    raise RateLimited(refusal.key_id, refusal.limit, retry_after)


@dataclass
class _Lease:
    """What this process knows of one key: places taken ahead, and how busy the key is here."""

    places: int = 0  # taken from the shared bucket, not yet used
    until: float = 0.0  # when the unused places lapse
    window_start: float = 0.0
    seen: int = 0  # requests in the window that started at window_start
    seen_before: int = 0  # requests in the window before it
    exact_until: float = 0.0  # a lease did not fit: one place per take until then


class _Leases:
    """The places this process took from keys' shared buckets ahead of their requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, _Lease] = {}
        self._taking: dict[str, threading.Lock] = {}

    def use(self, key_hash: str, now: float, seconds: float) -> bool:
        """Count a request of the key here; True if a leased place lets it in without the store."""
        with self._lock:
            lease = self._keys.setdefault(key_hash, _Lease(window_start=now))
            if now - lease.window_start >= seconds:
                # Requests in the window just ended, or none if more than one window went by.
                lease.seen_before = lease.seen if now - lease.window_start < 2 * seconds else 0
                lease.window_start, lease.seen = now, 0
            lease.seen += 1
            return self._place(lease, now)

    def place(self, key_hash: str, now: float) -> bool:
        """A leased place for a request already counted (one that waited for another's take)."""
        with self._lock:
            return self._place(self._keys[key_hash], now)

    @staticmethod
    def _place(lease: _Lease, now: float) -> bool:
        if lease.places and now < lease.until:
            lease.places -= 1
            return True
        lease.places = 0
        return False

    def taking(self, key_hash: str) -> threading.Lock:
        """The key's lock for taking from the store: one take of a key at a time in this process."""
        with self._lock:
            return self._taking.setdefault(key_hash, threading.Lock())

    def size(self, key_hash: str, limit: Limit, now: float) -> int:
        """How many places the next take should ask for: the key's requests here in a window, up to
        a tenth of its burst (so that leases parked in several processes stay a small part of it)."""
        with self._lock:
            lease = self._keys[key_hash]
            if now < lease.exact_until:
                return 1
            return max(1, min(max(lease.seen, lease.seen_before), limit.burst // 10))

    def grant(self, key_hash: str, places: int, now: float, seconds: float) -> None:
        with self._lock:
            lease = self._keys[key_hash]
            lease.places, lease.until = lease.places + places, now + seconds

    def exact(self, key_hash: str, now: float, seconds: float) -> None:
        """The key is near its limit: one place per take for a while (ten windows)."""
        with self._lock:
            self._keys[key_hash].exact_until = now + 10 * seconds


_LEASES = _Leases()


def rate_limit_take(key: WriteKey) -> None:
    """Count one request of `key`, or raise RateLimited if it is over its limit."""
    limit = write_key_limit(key)
    if limit is None:
        return
    now, seconds = time.time(), settings.INGEST_RATE_LEASE_SECONDS
    if seconds <= 0:
        wait = _store_take(key.pk, now, limit)
    elif _LEASES.use(key.key_hash, now, seconds):
        return
    else:
        with _LEASES.taking(key.key_hash):
            if _LEASES.place(key.key_hash, now):
                return
            wait = _leased_take(key, limit, now, seconds)
    if wait is not None:
        # Retry-After is whole seconds; rounding up means the retry fits, and 0 would say "now".
        retry_after = max(1, math.ceil(wait))
        # No request of the key can fit before then on any host (a bucket's time only moves
        # forward), and the client was told to wait that long: for (most of) that wait this
        # process refuses the key from memory, without the store or even the database. A limit
        # raised in Admin meanwhile applies once the refusal ends (at most its Retry-After).
        refusal_note(key.key_hash, now=now, until=now + retry_after, key_id=key.pk, limit=limit.describe())
        raise RateLimited(key.pk, limit.describe(), retry_after)


def _leased_take(key: WriteKey, limit: Limit, now: float, seconds: float) -> float | None:
    """Take a lease's worth of places, one of them for this request, or else one place (as
    _store_take answers)."""
    size = _LEASES.size(key.key_hash, limit, now)
    if size > 1:
        if _store_take(key.pk, now, limit, size) is None:
            _LEASES.grant(key.key_hash, size - 1, now, seconds)
            return None
        _LEASES.exact(key.key_hash, now, seconds)
    return _store_take(key.pk, now, limit)


def _store_take(key_id: int, now: float, limit: Limit, places: int = 1) -> float | None:
    """Take `places` places at once (GCRA with that cost: the interval times it); None when taken,
    else the seconds until they would fit."""
    interval, tolerance = places / limit.rate, limit.burst / limit.rate
    if settings.INGEST_RATE_LIMIT_STORE == "redis":
        return _redis_take(key_id, now, interval, tolerance)
    return _database_take(key_id, now, interval, tolerance)


# --- Redis ----------------------------------------------------------------------------------

# Returns "" when allowed, else the seconds until a request fits. As strings: Lua numbers come
# back to Redis clients as integers, which would cut the fraction off.
_GCRA_SCRIPT = """
local now, interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > tolerance then
  return tostring(new_tat - tolerance - now)
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return ''
"""


@cache
def _redis_script() -> Any:
    client = redis.Redis.from_url(settings.INGEST_RATE_LIMIT_REDIS_URL, socket_timeout=1.0)
    return client.register_script(_GCRA_SCRIPT)


def _redis_take(key_id: int, now: float, interval: float, tolerance: float) -> float | None:
    name = f"{settings.INGEST_RATE_LIMIT_REDIS_PREFIX}{key_id}"
    try:
        answer = _redis_script()(keys=[name], args=[repr(now), repr(interval), repr(tolerance)])
    except redis.RedisError:
        # Limits protect the service; Redis being down must not stop the ingest, whose events
        # are stored in the database. Requests go unlimited until Redis answers again.
        logger.warning("rate limits are not applied: Redis does not answer", exc_info=True)
        return None
    return float(answer) if answer else None


# --- The database ---------------------------------------------------------------------------


@cache
def _take_sql() -> str:
    # One statement creates the key's bucket holding this request, or counts the request in it if
    # it fits; so two hosts' requests cannot both take the last place (the row lock serialises the
    # upserts and each re-checks the condition on the row it locks), and the common case is one
    # round trip. No row changed: the request does not fit.
    table = connection.ops.quote_name(RateBucket._meta.db_table)
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    start = f"{greatest}({table}.tat, %(now)s) + %(interval)s"
    return (
        f"INSERT INTO {table} (key_id, tat) VALUES (%(key)s, %(now)s + %(interval)s) "
        f"ON CONFLICT (key_id) DO UPDATE SET tat = {start} WHERE {start} - %(now)s <= %(tolerance)s"
    )


def _database_take(key_id: int, now: float, interval: float, tolerance: float) -> float | None:
    with connection.cursor() as cursor:
        cursor.execute(_take_sql(), {"key": key_id, "now": now, "interval": interval, "tolerance": tolerance})
        if cursor.rowcount:
            return None
    # Refused: only now is the bucket read, to say when a request will fit again.
    tat = RateBucket.objects.filter(key_id=key_id).values_list("tat", flat=True).first()
    return max(tat or now, now) + interval - tolerance - now
