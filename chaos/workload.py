"""The chaos workload: the rules a run creates, the users it invents, and what they must receive.

The expectation is computed here from the workload alone — the rules as written below, the
messages generated and when the ingest API acknowledged them — never from the application's
rows, so a bug in matching or delivery cannot hide by agreeing with itself.

The model, per user (every user has an email address on every call, in `context.traits`, so the
order in which batches arrive does not change who can be emailed):

- Welcome (`user_signup`, at once, once per user): exactly 1, however many signups.
- Receipt (`order_completed`, at once, once per event): 1 per distinct order message.
- Cart recovery (`cart_abandoned`, CART_DELAY later, exit `order_completed`, once per user per day):
  1 for a user with a cart and no later order; 0 when the later order (the exit) was acknowledged
  before the recovery fell due (the app must cancel it); 0 or 1 when the exit was acknowledged only
  after the due time ("raced": either is correct, and it is counted).
- Browse reminder (`product_viewed`, 1 h later with a 2 h cooldown, once per event): the views are
  timestamped almost an hour ago, so they fall due within seconds; 1 per user who viewed, because
  the cooldown covers every other view — unless the user is in the rule's A/B holdout (chaos.variants):
  then 0. Users in A or B must get their own variant's email (checked in the verdict).
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chaos.variants import browse_variants, variant_of

WELCOME, RECEIPT, RECOVERY, BROWSE = "Chaos welcome", "Chaos receipt", "Chaos cart recovery", "Chaos browse reminder"
RULE_NAMES = (WELCOME, RECEIPT, RECOVERY, BROWSE)
BROWSE_DELAY = timedelta(hours=1)
# How far a view's timestamp is from falling due when it is stamped: a few seconds of real delay.
BROWSE_DUE_IN = timedelta(seconds=5)


def rules_document(*, cart_delay_seconds: int) -> dict[str, Any]:
    """The campaign the run imports (the same format as `manage.py import_rules`)."""

    def template(subject: str, category: str) -> dict[str, Any]:
        return {"category": category, "subject": subject, "text_body": "Hi {{ contact.user_id }}, " + subject}

    def rule(trigger: str, name: str, **fields: Any) -> dict[str, Any]:
        return {"trigger_event": trigger, "template": name, **fields}

    return {
        "format": 1,
        "templates": {
            WELCOME: template("Welcome", "transactional"),
            RECEIPT: template("Your receipt for order {{ event.order_id }}", "transactional"),
            RECOVERY: template("You left something in your cart", "marketing"),
            BROWSE: template("Still thinking about {{ event.product }}?", "marketing"),
            BROWSE + " B": template("Back for {{ event.product }}?", "marketing"),
        },
        "rules": {
            WELCOME: rule("user_signup", WELCOME, dedupe_policy="once_per_user"),
            RECEIPT: rule("order_completed", RECEIPT, dedupe_policy="per_event"),
            RECOVERY: rule(
                "cart_abandoned",
                RECOVERY,
                delay=f"{cart_delay_seconds}s",
                exit_events=["order_completed"],
                dedupe_policy="per_user_day",
            ),
            BROWSE: rule(
                "product_viewed",
                BROWSE,
                delay="1h",
                cooldown="2h",
                dedupe_policy="per_event",
                variants=browse_variants(BROWSE),
            ),
        },
    }


class Message:
    """One Segment message. Its timestamp is fixed the first time it is posted, so every copy of it
    (a retried batch, a duplicate delivery) is byte-for-byte the same message."""

    def __init__(self, user_id: str, kind: str, body: dict[str, Any], stamp_offset: timedelta = timedelta(0)) -> None:
        self.message_id = f"chaos-{uuid.uuid4().hex}"
        self.user_id = user_id
        self.kind = kind  # identify, signup, order, cart, exit, view
        self.body = {**body, "messageId": self.message_id}
        self.stamp_offset = stamp_offset
        self.timestamp: datetime | None = None

    def stamp(self, clock: Clock) -> dict[str, Any]:
        if self.timestamp is None:
            self.timestamp = clock.now() + self.stamp_offset
            self.body["timestamp"] = self.timestamp.isoformat()
        return self.body


# Timestamps trail the wall clock a little: the ingest API clamps a timestamp from the future to the
# receive time, and two clamped messages of one batch would lose their order (see the report).
CLOCK_LAG = timedelta(seconds=1)


class Clock:
    """Strictly increasing wall-clock timestamps, so a user's later message is never 'at the same
    time' as an earlier one (an exit event at the trigger's own instant is ambiguous)."""

    def __init__(self) -> None:
        self._last = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            self._last = max(datetime.now(UTC) - CLOCK_LAG, self._last + timedelta(milliseconds=1))
            return self._last


@dataclass
class User:
    user_id: str
    email: str
    messages: list[Message] = field(default_factory=list)

    def of(self, kind: str) -> list[Message]:
        return [m for m in self.messages if m.kind == kind]


def track_append(
    user: User, event: str, kind: str, properties: dict[str, Any], offset: timedelta = timedelta(0)
) -> None:
    body = {
        "type": "track",
        "userId": user.user_id,
        "event": event,
        "properties": properties,
        "context": {"traits": {"email": user.email}},
    }
    user.messages.append(Message(user.user_id, kind, body, offset))


def user_make(run_id: str, index: int, rng: random.Random) -> User:
    user = User(user_id=f"{run_id}-u{index}", email=f"{run_id}-u{index}@chaos.example.com")
    identify = {"type": "identify", "userId": user.user_id, "traits": {"email": user.email}}
    user.messages.append(Message(user.user_id, "identify", identify))
    for _ in range(2 if rng.random() < 0.05 else 1):
        track_append(user, "user_signup", "signup", {"plan": "free"})
    for n in range(rng.choice((0, 0, 1, 1, 2))):
        track_append(user, "order_completed", "order", {"order_id": f"{user.user_id}-o{n}", "total": 10 + n})
    if rng.random() < 0.35:
        track_append(user, "cart_abandoned", "cart", {"value": 42})
        if rng.random() < 0.4:
            track_append(user, "order_completed", "exit", {"order_id": f"{user.user_id}-exit", "total": 42})
    views = rng.choice((0, 0, 0, 1, 2, 3))
    for n in range(views):
        offset = -BROWSE_DELAY + BROWSE_DUE_IN + timedelta(milliseconds=200 * n)
        track_append(user, "product_viewed", "view", {"product": f"teapot-{n}"}, offset)
    return user


def users_make(run_id: str, events: int, rng: random.Random) -> list[User]:
    users: list[User] = []
    while sum(len(u.messages) for u in users) < events:
        users.append(user_make(run_id, len(users), rng))
    return users


def batches_make(users: list[User], *, size: int, rng: random.Random, pool: int = 40) -> list[list[Message]]:
    """Interleave the users' messages (each user's in order) and cut the stream into batches."""
    waiting = list(users)
    active: list[list[Message]] = []
    stream: list[Message] = []
    while waiting or active:
        while waiting and len(active) < pool:
            active.append(list(waiting.pop(0).messages))
        script = rng.choice(active)
        stream.append(script.pop(0))
        if not script:
            active.remove(script)
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def duplicates_add(batches: list[list[Message]], *, rate: float, rng: random.Random) -> int:
    """Deliver some messages again (same messageId) in a later batch, as a retrying pipeline does."""
    added = 0
    for index, batch in enumerate(batches[:-1]):
        for message in list(batch):
            if rng.random() < rate:
                later = min(len(batches) - 1, index + rng.randint(1, 5))
                batches[later].append(message)
                added += 1
    return added


@dataclass
class Expected:
    """What one user must get from one rule: at least `low`, at most `high` emails."""

    low: int
    high: int
    why: str


def expectations(
    users: list[User], acks: dict[str, float], *, cart_delay: float, browse_rule_id: int
) -> dict[tuple[str, str], Expected]:
    """The model in the module docstring, per (user id, rule name)."""
    expected: dict[tuple[str, str], Expected] = {}
    for user in users:
        uid = user.user_id
        expected[(uid, WELCOME)] = Expected(1, 1, "signed up")
        orders = len(user.of("order")) + len(user.of("exit"))
        expected[(uid, RECEIPT)] = Expected(orders, orders, f"{orders} order(s)")
        if not user.of("view"):
            expected[(uid, BROWSE)] = Expected(0, 0, "no view")
        elif variant_of(browse_rule_id, uid) == "holdout":
            expected[(uid, BROWSE)] = Expected(0, 0, "viewed, in the A/B holdout")
        else:
            expected[(uid, BROWSE)] = Expected(1, 1, "viewed (cooldown covers the rest)")
        expected[(uid, RECOVERY)] = _recovery(user, acks, cart_delay)
    return expected


def _recovery(user: User, acks: dict[str, float], cart_delay: float) -> Expected:
    carts = user.of("cart")
    if not carts or carts[0].timestamp is None:
        return Expected(0, 0, "no cart")
    cart_at = carts[0].timestamp
    # Any order at or after the cart is an exit event (the app's test is occurred_at >= triggered_at),
    # whichever part of the script it came from.
    exits = [m for m in user.of("order") + user.of("exit") if m.timestamp is not None and m.timestamp >= cart_at]
    if not exits:
        return Expected(1, 1, "cart, no exit")
    first_ack = min(acks.get(m.message_id, float("inf")) for m in exits)
    if first_ack < cart_at.timestamp() + cart_delay:
        return Expected(0, 0, "exit acknowledged before due: must be cancelled")
    return Expected(0, 1, "raced: exit acknowledged after due")


def expectation_totals(expected: dict[tuple[str, str], Expected]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: {"low": 0, "high": 0, "exit": 0, "raced": 0})
    for (_, rule), e in expected.items():
        totals[rule]["low"] += e.low
        totals[rule]["high"] += e.high
        totals[rule]["exit"] += e.why.startswith("exit acknowledged")
        totals[rule]["raced"] += e.why.startswith("raced")
    return dict(totals)


def batch_body(batch: list[Message], clock: Clock) -> bytes:
    return json.dumps({"batch": [m.stamp(clock) for m in batch]}).encode()
