"""The chaos suite's own parts: the fake provider's fault rates, the workload model, the verdict.

The chaos run itself (`make chaos-quick`, about a minute and a half of real processes) is its own
step in CI rather than a test here: `make test` runs twice (SQLite and PostgreSQL) and the run needs
PostgreSQL and Redis. These tests make sure that what judges the run is right.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from chaos.report import SendRow, Verdict, sends_section
from chaos.workload import (
    BROWSE,
    RECEIPT,
    RECOVERY,
    WELCOME,
    Clock,
    Expected,
    User,
    batches_make,
    expectations,
    track_append,
    user_make,
)
from harness.sendgrid_server import API_KEY, Accepted, Fault, FaultRates, SendGridServer

MAIL: dict[str, Any] = {
    "personalizations": [{"to": [{"email": "a@example.com"}]}],
    "custom_args": {"triggermail_send": "1"},
}


@pytest.fixture
def server():
    running = SendGridServer().start()
    yield running
    running.stop()


def post(server: SendGridServer, timeout: float = 5.0) -> requests.Response:
    return requests.post(
        server.url + "mail/send", json=MAIL, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=timeout
    )


def test_the_server_answers_500_at_a_rate_of_one_and_counts_it(server):
    server.fail_at_rates(FaultRates(server_error=1.0))
    assert post(server).status_code == 500
    assert server.injected == {"500": 1} and server.accepted == []


def test_a_rate_limited_answer_says_when_to_come_back(server):
    server.fail_at_rates(FaultRates(rate_limited=1.0, seed=3))
    for _ in range(6):
        response = post(server)
        assert response.status_code == 429
        assert "Retry-After" in response.headers or "X-RateLimit-Reset" in response.headers
    assert server.injected["429"] == 6


def test_a_timeout_fault_accepts_then_answers_after_the_clients_timeout(server):
    server.fail_at_rates(FaultRates(timeout=1.0, client_timeout=0.2))
    with pytest.raises(requests.ReadTimeout):
        post(server, timeout=0.2)
    assert [a.send_id for a in server.accepted] == ["1"]


def test_a_drop_fault_accepts_then_closes_the_connection(server):
    server.fail_at_rates(FaultRates(drop=1.0))
    with pytest.raises(requests.ConnectionError):
        post(server)
    assert len(server.accepted) == 1 and server.injected == {"drop": 1}


def test_queued_faults_come_before_rates_and_none_stops_the_rates(server):
    server.fail_at_rates(FaultRates(server_error=1.0))
    server.fail_next(Fault(kind="status", status=400))
    assert [post(server).status_code for _ in range(2)] == [400, 500]
    server.fail_at_rates(None)
    assert post(server).status_code == 202
    assert server.injected == {"500": 1}


def test_every_accepted_message_is_handed_to_on_accept(server):
    seen: list[Accepted] = []
    server.on_accept = seen.append
    post(server)
    assert [a.message_id for a in seen] == [a.message_id for a in server.accepted]


def stamped(user: User, clock: Clock) -> User:
    for message in user.messages:
        message.stamp(clock)
    return user


def cart_user(*, exit_event: bool) -> User:
    user = User(user_id="u1", email="u1@example.com")
    track_append(user, "user_signup", "signup", {})
    track_append(user, "order_completed", "order", {"order_id": "o1"})
    track_append(user, "cart_abandoned", "cart", {})
    if exit_event:
        track_append(user, "order_completed", "exit", {"order_id": "o2"})
    return stamped(user, Clock())


def test_a_cart_without_a_later_order_expects_one_recovery():
    user = cart_user(exit_event=False)
    expected = expectations([user], {}, cart_delay=8, browse_rule_id=1)
    assert (expected[("u1", RECOVERY)].low, expected[("u1", RECOVERY)].high) == (1, 1)
    assert expected[("u1", RECEIPT)].low == 1 and expected[("u1", WELCOME)].low == 1
    assert expected[("u1", BROWSE)].high == 0


def test_an_exit_acknowledged_before_the_due_time_expects_no_recovery():
    user = cart_user(exit_event=True)
    acks = {user.of("exit")[0].message_id: datetime.now(UTC).timestamp()}
    expected = expectations([user], acks, cart_delay=8, browse_rule_id=1)
    assert (expected[("u1", RECOVERY)].low, expected[("u1", RECOVERY)].high) == (0, 0)
    assert expected[("u1", RECEIPT)].low == 2


def test_an_exit_acknowledged_after_the_due_time_allows_either():
    user = cart_user(exit_event=True)
    acks = {user.of("exit")[0].message_id: (datetime.now(UTC) + timedelta(seconds=60)).timestamp()}
    recovery = expectations([user], acks, cart_delay=8, browse_rule_id=1)[("u1", RECOVERY)]
    assert (recovery.low, recovery.high) == (0, 1)


def test_batches_keep_each_users_messages_in_order():
    rng = random.Random(5)
    users = [user_make("t", i, rng) for i in range(60)]
    batches = batches_make(users, size=7, rng=rng)
    stream = [m for batch in batches for m in batch]
    assert len(stream) == sum(len(u.messages) for u in users)
    for user in users:
        assert [m for m in stream if m.user_id == user.user_id] == user.messages


def test_a_key_accepted_twice_and_a_missing_email_fail_the_verdict():
    def accepted(send_id: str, key: str) -> Accepted:
        custom_args = {"triggermail_send": send_id, "triggermail_key": key}
        return Accepted(message_id=send_id, received_at=0.0, payload={"custom_args": custom_args})

    sends = [SendRow(1, WELCOME, "u1", "sent", "", "k1"), SendRow(2, RECEIPT, "u1", "scheduled", "", "k2")]
    expected = {("u1", WELCOME): (1, 1), ("u1", RECEIPT): (1, 1)}
    verdict = Verdict()
    sends_section(
        verdict,
        sends=sends,
        ledger=[accepted("1", "k1"), accepted("1", "k1")],
        expected={pair: Expected(low, high, "test") for pair, (low, high) in expected.items()},
    )
    failed = " ".join(verdict.failures)
    assert "duplicates per key" in failed and "duplicates per send" in failed
    assert "lost sends" in failed and "u1/Chaos receipt" in failed


def test_a_user_who_got_both_the_original_and_its_resend_fails_the_verdict():
    def accepted(send_id: str, key: str) -> Accepted:
        custom_args = {"triggermail_send": send_id, "triggermail_key": key}
        return Accepted(message_id=send_id, received_at=0.0, payload={"custom_args": custom_args})

    # The original was judged not accepted and resent under a key of its own; SendGrid had both.
    sends = [
        SendRow(1, WELCOME, "u1", "sent", "accepted after all", "k1", event_id=7),
        SendRow(2, WELCOME, "u1", "sent", "automatic resend of send #1", "k1#resend-1", event_id=7),
    ]
    verdict = Verdict()
    sends_section(
        verdict,
        sends=sends,
        ledger=[accepted("1", "k1"), accepted("2", "k1#resend-1")],
        expected={("u1", WELCOME): Expected(1, 1, "test")},
    )
    failed = " ".join(verdict.failures)
    assert "users who got an email twice" in failed and f"u1/{WELCOME}/event 7: 2" in failed
    assert "duplicates per key" not in failed


def test_the_chaos_runs_own_variant_assignment_agrees_with_the_apps():
    # The verdict's expectation is written independently of the app; both follow the README's rule.
    from campaigns.matching.variants import VariantData, variant_assign
    from chaos.variants import VARIANTS, variant_of

    variants = [
        VariantData(name, "t" if suffix is not None else "", weight) for name, (suffix, _, weight) in VARIANTS.items()
    ]
    for user_id in (f"chaos-user-{n}" for n in range(3000)):
        assert variant_of(17, user_id) == variant_assign(17, user_id, variants).name  # type: ignore[union-attr]
