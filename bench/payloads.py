"""What the load generator posts: Segment track calls as analytics SDKs send them.

Every event that should cause an email belongs to a user of its own whose address is
`<user id>@bench.example`, carried in context.traits as the SDKs do, so an email at the provider
names the event that caused it and the checks can count losses and duplicates per event.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

EMAIL_DOMAIN = "bench.example"
# The rules the benchmark creates (bench.database.rules_seed): event name -> (rule name, delay s).
NOW_EVENT = "bench_signup"  # no delay
LATER_EVENT = "bench_cart"  # delayed by LATER_DELAY
SEEDED_EVENT = "bench_seeded"  # the rule that owns P4's million pending sends
QUIET_EVENT = "bench_pageview"  # no rule listens: stored and processed, never emailed
LATER_DELAY = 3600.0

_CONTEXT = {
    "library": {"name": "analytics-python", "version": "2.4.0"},
    "ip": "203.0.113.9",
    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) TriggerMail-bench",
    "page": {"path": "/checkout", "url": "https://shop.example/checkout"},
}
_PROPERTIES = {"plan": "pro", "value": 42.5, "currency": "EUR", "items": 3, "coupon": None}


def email_of(user_id: str) -> str:
    return f"{user_id}@{EMAIL_DOMAIN}"


def user_of(email: str) -> str:
    return email.rsplit("@", 1)[0]


def track(user_id: str, event: str, *, with_email: bool = True, timestamp: datetime | None = None) -> dict[str, Any]:
    """One track call; messageId is derived from the user, so a retried post is deduplicated."""
    context: dict[str, Any] = dict(_CONTEXT)
    if with_email:
        context["traits"] = {"email": email_of(user_id), "first_name": "Bench"}
    return {
        "type": "track",
        "event": event,
        "userId": user_id,
        "messageId": f"m-{user_id}",
        "timestamp": (timestamp or datetime.now(UTC)).isoformat(),
        "properties": _PROPERTIES,
        "context": context,
    }


def batch_body(events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"batch": events, "sentAt": datetime.now(UTC).isoformat()}).encode()


def batches(
    prefix: str, *, size: int, event: str = QUIET_EVENT, with_email: bool = False
) -> Iterator[tuple[list[str], bytes]]:
    """Endless /v1/batch bodies of `size` events, each for a new user `<prefix>-<n>`."""
    n = 0
    while True:
        users = [f"{prefix}-{n + i}" for i in range(size)]
        n += size
        yield users, batch_body([track(u, event, with_email=with_email) for u in users])


def mixed_batches(prefix: str, *, size: int, triggering: float) -> Iterator[tuple[list[str], bytes]]:
    """/v1/batch bodies in which a `triggering` share of the events causes an email (P5).

    Returns the users whose event triggers; the others send QUIET_EVENT, which no rule hears.
    """
    n = 0
    due = 0.0
    while True:
        events, emailed = [], []
        for _ in range(size):
            user = f"{prefix}-{n}"
            n += 1
            due += triggering
            if due >= 1.0:
                due -= 1.0
                emailed.append(user)
                events.append(track(user, NOW_EVENT))
            else:
                events.append(track(user, QUIET_EVENT))
        yield emailed, batch_body(events)


def singles(prefix: str, *, event: str, with_email: bool = True) -> Iterator[tuple[str, bytes]]:
    """Endless /v1/track bodies, one new user each (P2, P3)."""
    n = 0
    while True:
        user = f"{prefix}-{n}"
        n += 1
        yield user, json.dumps(track(user, event, with_email=with_email)).encode()
