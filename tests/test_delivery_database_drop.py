"""The database goes away while the provider is being called: its answer must not be lost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import OperationalError, connection

from campaigns.models import Send
from campaigns.sending.delivery import sends_deliver
from tests.conftest import identify, track
from tests.steps import events_process_pending
from tests.world import rule_make


class DropOnce:
    """A database execute wrapper that fails the first statement `matches` picks, as a dropped
    connection would, and lets everything else through."""

    def __init__(self, matches: Callable[[str], bool]) -> None:
        self.matches = matches
        self.dropped = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if not self.dropped and self.matches(sql):
            self.dropped += 1
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)


def test_an_accepted_send_is_recorded_sent_after_the_connection_drops(transactional_db, api, sendgrid):
    rule_make("welcome", "user_signup")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    events_process_pending()
    send = Send.objects.get()
    # The UPDATE that records the provider's acceptance.
    drop = DropOnce(lambda sql: sql.startswith('UPDATE "campaigns_send"') and '"sent_at" =' in sql)
    with connection.execute_wrapper(drop):
        assert sends_deliver([send.pk]) == {"accepted": 1}
    send.refresh_from_db()
    assert drop.dropped == 1
    assert (send.state, send.provider_message_id) == ("sent", sendgrid.accepted[0].message_id)
    assert len(sendgrid.accepted) == 1


def test_a_connection_dropped_while_claiming_is_retried_and_each_email_goes_once(transactional_db, api, sendgrid):
    rule_make("receipt", "order_completed")
    api.batch([identify("u1", "u1@example.com"), track("order_completed", "u1"), track("order_completed", "u1")])
    events_process_pending()
    first, second = Send.objects.order_by("pk")
    drop = DropOnce(lambda sql: sql.startswith("SELECT") and 'FROM "campaigns_send"' in sql)
    with connection.execute_wrapper(drop):
        assert sends_deliver([first.pk, second.pk]) == {"accepted": 2}
    assert drop.dropped == 1
    assert sorted(Send.objects.values_list("state", flat=True)) == ["sent", "sent"]
    assert sorted(sendgrid.keys().values()) == [1, 1]


def test_a_send_whose_claim_keeps_failing_does_not_hold_up_the_rest_of_its_batch(transactional_db, api, sendgrid):
    rule_make("receipt", "order_completed")
    api.batch([identify("u1", "u1@example.com"), track("order_completed", "u1"), track("order_completed", "u1")])
    events_process_pending()
    first, second = Send.objects.order_by("pk")

    def fail_first(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        # Every claim that includes the first send fails, as a statement the database rejects would.
        claiming = sql.startswith("SELECT") and '"campaigns_send"."due_at" <=' in sql
        if claiming and first.pk in (params or ()):
            raise OperationalError("the database refused this statement")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail_first):
        assert sends_deliver([first.pk, second.pk]) == {"database_error": 1, "accepted": 1}
    assert dict(Send.objects.values_list("pk", "state")) == {first.pk: "scheduled", second.pk: "sent"}
