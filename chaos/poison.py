"""Poison in the chaos workload: a few percent of messages that no code path expects.

Three kinds, each on an event name of its own with a rule of its own, none of which may ever
cause an email, so the model of expected emails is unchanged:

- `trap`: an order-like event on a rule whose condition was broken by a bad write (an operator no
  form offers, put straight into the database after the import). Matching it raises; the event
  MUST end processed and failed, with the error as its reason.
- `odd`: values where a number is compared (a 400-digit integer, "1e309", "NaN", a list, a nested
  object, a 5,000-character string) on a rule whose condition none of them meets. Matching them must
  NOT raise: each event ends processed, without an error, with a `condition_false` decision.
- `render`: an event whose data makes the rule's template raise (a division by zero). The event is
  processed; its send MUST end `failed` with the template error as its reason, never sent.
"""

from __future__ import annotations

import random
from typing import Any

from chaos.workload import Expected, Message, User, track_append

TRAP, ODD, RENDER = "Chaos poison trap", "Chaos odd values", "Chaos render poison"
POISON_RULES = (TRAP, ODD, RENDER)
EVENTS = {"trap": "chaos_trap", "odd": "chaos_odd", "render": "chaos_render"}
KINDS = tuple(f"poison-{kind}" for kind in EVENTS)
# Within the ingest's limits (32 KB a message, 32 levels deep): poison that is stored, not refused.
ODD_VALUES: tuple[Any, ...] = (
    10**400,
    -(10**400),
    str(10**400),
    "1e309",
    "NaN",
    [60, 70],
    {"a": {"b": [[[[60]]]]}},
    "x" * 5000,
)


def poison_rules_add(document: dict[str, Any]) -> None:
    """Add the poison kinds' templates and rules to the run's rules document."""

    def template(subject: str, text: str) -> dict[str, Any]:
        return {"category": "transactional", "subject": subject, "text_body": text}

    def condition(operator: str, value: Any) -> dict[str, Any]:
        return {"source": "property", "key": "total", "operator": operator, "value": value}

    document["templates"].update(
        {
            TRAP: template("Trap", "never rendered"),
            ODD: template("Odd", "never rendered"),
            # The import renders templates without data (where `event.n` is missing): only an event
            # that carries n reaches the division.
            RENDER: template("Render", "{% if event.n is not None %}{{ 10|divisibleby:event.n }}{% endif %}"),
        }
    )
    document["rules"].update(
        {
            TRAP: {"trigger_event": EVENTS["trap"], "template": TRAP, "conditions": [condition("gte", 50)]},
            ODD: {"trigger_event": EVENTS["odd"], "template": ODD, "conditions": [condition("eq", -1)]},
            RENDER: {"trigger_event": EVENTS["render"], "template": RENDER},
        }
    )


def poison_rule_break() -> None:
    """Break the trap rule as a bad write would: the import itself refuses unknown operators."""
    from campaigns.models import Condition

    Condition.objects.filter(rule__name=TRAP).update(operator="between")


def poison_add(users: list[User], *, rate: float, rng: random.Random) -> int:
    """Give some users one poison message at a random place in their script; return how many."""
    added = 0
    for user in users:
        if rng.random() >= rate:
            continue
        kind = rng.choice(tuple(EVENTS))
        if kind == "trap":
            properties: dict[str, Any] = {"total": rng.choice((80, 10**400, -5))}
        elif kind == "odd":
            properties = {"total": rng.choice(ODD_VALUES)}
        else:
            properties = {"n": 0}
        track_append(user, EVENTS[kind], f"poison-{kind}", properties)
        # Anywhere after the identify: poison lands between a user's ordinary events.
        user.messages.insert(rng.randint(1, len(user.messages) - 1), user.messages.pop())
        added += 1
    return added


def poison_expectations(users: list[User]) -> dict[tuple[str, str], Expected]:
    """No poison rule may email anyone."""
    return {(user.user_id, rule): Expected(0, 0, "poison: no email") for user in users for rule in POISON_RULES}


def poison_messages(users: list[User]) -> dict[str, list[Message]]:
    """The poison messages of the workload by kind ("poison-trap", ...)."""
    return {kind: [m for user in users for m in user.of(kind)] for kind in KINDS}
