"""The chaos run's poison: mixed into users' scripts, no email expected, and judged strictly."""

from __future__ import annotations

import random

from django.utils import timezone

from chaos.poison import KINDS, POISON_RULES, poison_add, poison_expectations, poison_messages
from chaos.report import Verdict, poison_section
from chaos.workload import User, user_make
from events.models import Event
from tests import baker_recipes


def poisoned_users(count: int = 200, seed: int = 7) -> list[User]:
    rng = random.Random(seed)
    users = [user_make("t", i, rng) for i in range(count)]
    poison_add(users, rate=0.1, rng=rng)
    return users


def test_poison_is_a_few_percent_of_the_messages_and_never_comes_before_the_identify():
    users = poisoned_users()
    poison = [m for messages in poison_messages(users).values() for m in messages]
    total = sum(len(u.messages) for u in users)
    assert 0.01 < len(poison) / total < 0.06
    assert {m.kind for m in poison} == set(KINDS)
    assert all(u.messages[0].kind == "identify" for u in users)


def test_poison_expects_no_email_from_any_poison_rule():
    users = poisoned_users(count=3)
    expected = poison_expectations(users)
    assert {rule for _, rule in expected} == set(POISON_RULES)
    assert {(e.low, e.high) for e in expected.values()} == {(0, 0)}


def store(users: list[User], *, error: str) -> None:
    now = timezone.now()
    for messages in poison_messages(users).values():
        for m in messages:
            baker_recipes.track_event.make(
                message_id=m.message_id, name=m.body["event"], user_id=m.user_id, occurred_at=now, received_at=now,
                processed_at=now, processing_error=error if m.kind == "poison-trap" else "",
            )  # fmt: skip


def test_the_verdict_fails_when_a_trap_event_was_processed_without_its_error(db):
    users = poisoned_users()
    store(users, error="")
    verdict = Verdict()
    poison_section(verdict, users)
    assert any("poison-trap events processed without an error" in f for f in verdict.failures)


def test_the_verdict_fails_when_poison_is_left_unprocessed_or_a_render_send_is_missing(db):
    users = poisoned_users()
    store(users, error="ValueError: unknown condition operator 'between'")
    Event.objects.filter(name="chaos_odd").update(processed_at=None)
    verdict = Verdict()
    poison_section(verdict, users)
    failed = " ".join(verdict.failures)
    assert "poison-odd events left unprocessed" in failed
    assert "poison-render events without their failed send" in failed
    assert "poison-trap" not in failed
