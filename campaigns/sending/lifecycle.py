"""A send's whole life: every change of `Send.state` is one of these functions, and nothing else writes it.

Each is a conditional update from the states its @transition declares (checked against the one table,
campaigns.sending.transitions.TRANSITIONS, when this module is imported) and returns how many sends
moved: 0 means another process, or evidence, changed the send first, and the caller leaves it alone.
The columns a transition sets besides `state` are its arguments, so each caller still decides them.
tests/test_send_lifecycle.py fails naming the file and line of any write of `state` outside this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db.models import F, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, NullIf

from campaigns.models import Send
from campaigns.reporting.latency import latency_measure
from campaigns.sending.transitions import MOVES, State, sources_of, transition, transitions_check
from events.models import Contact
from triggermail.bulk import insert_new_returning, update_from_values


@transition(None, to=(State.SCHEDULED,))
def sends_insert(*, sends: Sequence[Send], returning: Sequence[str]) -> list[tuple[Any, ...]]:
    """Matching schedules sends for an event's decisions.

    One INSERT … ON CONFLICT DO NOTHING for the batch: a send whose key a live send holds is not
    stored. Returns the `returning` columns of the sends that were stored.
    """
    _new_check(sends)
    return insert_new_returning(sends, returning=returning)


@transition(None, to=(State.SCHEDULED,))
def resend_insert(**fields: Any) -> Send:
    """A resend of an abandoned or not-accepted send is created, due now (a person's or the automatic one)."""
    resend = Send(**fields)
    _new_check([resend])
    resend.save(force_insert=True)
    return resend


def _new_check(sends: Sequence[Send]) -> None:
    # A send is born `scheduled`; one created in any other state would skip the claim's checks.
    born = sorted({s.state for s in sends} - {State.SCHEDULED})
    if born:
        raise ValueError(f"a new send must be scheduled, not {', '.join(born)}")


@transition(State.SCHEDULED, to=(State.SENDING,))
def sends_start(*, send_ids: Sequence[int], now: datetime) -> int:
    """The claim: keys reserved, the provider call comes next (one UPDATE for the batch)."""
    if not send_ids:
        return 0
    return Send.objects.filter(pk__in=list(send_ids), state__in=sources_of(sends_start)).update(
        state=State.SENDING,
        reason="",
        attempts=F("attempts") + 1,
        sending_started_at=now,
        # The address the messages were built for: the claim holds the contact rows' locks until commit.
        to_email=Subquery(Contact.objects.filter(pk=OuterRef("contact_id")).values("email")[:1]),
    )


@transition(State.SCHEDULED, to=(State.CANCELLED, State.SUPPRESSED, State.FAILED, State.SCHEDULED))
def send_refuse(
    *, send_id: int, state: State, reason: str, last_error: str | None = None, due_at: datetime | None = None
) -> int:
    """The claim does not send it now: a send-time check says no or later, or its message or claim raised."""
    if state not in MOVES["send_refuse"].targets:
        raise ValueError(f"send_refuse cannot move a send to {state}")
    fields: dict[str, Any] = {}
    if last_error is not None:
        fields["last_error"] = last_error
    if due_at is not None:
        # Queued again by the dispatcher when that time comes.
        fields.update(due_at=due_at, enqueued_at=None)
    refused = Send.objects.filter(pk=send_id, state__in=sources_of(send_refuse))
    return refused.update(state=state, reason=reason[:255], **fields)


@transition(State.SENDING, State.UNKNOWN, to=(State.SENT,))
def sends_accept(*, message_ids: Mapping[int, str], now: datetime) -> int:
    """The provider accepted them: recorded with their latency (one UPDATE … FROM (VALUES …) for the batch).

    A stale-marked (`unknown`) send still becomes `sent`. Run in the caller's transaction: the sends
    are locked first, so the UPDATE writes only rows still in a source state.
    """
    in_flight = (
        Send.objects.select_for_update(of=("self",))
        .filter(pk__in=list(message_ids), state__in=sources_of(sends_accept))
        .values_list("pk", "due_at", "event__received_at", "event__processed_at", "resend_of_id")
    )
    rows = []
    for pk, due_at, received_at, processed_at, resend_of_id in in_flight:
        latency_ms, kind = latency_measure(
            sent_at=now,
            due_at=due_at,
            accepted_at=received_at,
            matched_at=processed_at,
            resend=resend_of_id is not None,
        )
        rows.append((pk, State.SENT, "", now, message_ids[pk], latency_ms, kind))
    return update_from_values(
        Send, rows, fields=["state", "reason", "sent_at", "provider_message_id", "latency_ms", "latency_kind"]
    )


@transition(State.SENDING, State.UNKNOWN, to=(State.UNKNOWN,))
def send_record_ambiguous(*, send_id: int, error: str) -> int:
    """The provider's answer was ambiguous (a timeout, a 5xx): it may have been sent, so it is never retried."""
    return Send.objects.filter(pk=send_id, state__in=sources_of(send_record_ambiguous)).update(
        state=State.UNKNOWN,
        reason="the provider's answer was ambiguous; it may have been sent, so it is not retried",
        last_error=error,
    )


@transition(State.SENDING, to=(State.SCHEDULED,))
def send_retry(*, send_id: int, reason: str, due_at: datetime, error: str) -> int:
    """The provider proved it was not sent and asked to retry, attempts remain: scheduled again, key released.

    Only from `sending`: a send the stale sweep already called `unknown` is never rescheduled.
    """
    return Send.objects.filter(pk=send_id, state__in=sources_of(send_retry)).update(
        state=State.SCHEDULED, reason=reason[:255], due_at=due_at, enqueued_at=None, last_error=error
    )


@transition(State.SENDING, State.UNKNOWN, to=(State.FAILED,))
def send_fail(*, send_id: int, reason: str, error: str) -> int:
    """The provider refused it, or retries ran out: proven not sent.

    Also from `unknown` (a slow answer after the stale sweep): the answer proves it was not sent and
    its key is released, so the row must not go on saying "maybe sent".
    """
    return Send.objects.filter(pk=send_id, state__in=sources_of(send_fail)).update(
        state=State.FAILED, reason=reason[:255], last_error=error
    )


@transition(State.SCHEDULED, to=(State.CANCELLED,))
def sends_cancel_on_exit(*, sends: QuerySet[Send], reason: str) -> int:
    """An exit event of the rule arrived for the contact after the trigger."""
    return sends.filter(state__in=sources_of(sends_cancel_on_exit)).update(state=State.CANCELLED, reason=reason[:255])


@transition(State.SCHEDULED, to=(State.CANCELLED,))
def sends_cancel_by_person(*, sends: QuerySet[Send], reason: str, now: datetime) -> int:
    """A person cancels waiting sends in the admin.

    A send the worker claimed a moment ago is already `sending` and is left alone: it may reach the provider.
    """
    return sends.filter(state__in=sources_of(sends_cancel_by_person)).update(
        state=State.CANCELLED, reason=reason[:255], updated_at=now
    )


@transition(State.SENDING, to=(State.UNKNOWN,))
def sends_mark_stale(*, started_before: datetime) -> int:
    """The provider call outlived any possible answer (SENDING_STALE_AFTER): the worker stopped during it."""
    stale = Send.objects.filter(state__in=sources_of(sends_mark_stale), sending_started_at__lt=started_before)
    return stale.update(
        state=State.UNKNOWN,
        reason="the worker stopped during the provider call; it may have been sent, so it is not retried",
    )


@transition(State.UNKNOWN, to=(State.ABANDONED,))
def sends_abandon(*, started_before: datetime, reason: str, now: datetime) -> int:
    """No webhook evidence within UNKNOWN_GRACE_SECONDS of the attempt: a person decides."""
    unknown = Send.objects.filter(state__in=sources_of(sends_abandon), sending_started_at__lt=started_before)
    return unknown.update(state=State.ABANDONED, reason=reason[:255], updated_at=now)


@transition(State.SENDING, State.UNKNOWN, State.ABANDONED, State.NOT_ACCEPTED, to=(State.SENT,))
def send_settle(*, send_id: int, reason: str, occurred_at: datetime, provider_message_id: str, now: datetime) -> int:
    """A webhook event carrying the send's key proves the provider accepted it."""
    return Send.objects.filter(pk=send_id, state__in=sources_of(send_settle)).update(
        state=State.SENT,
        reason=reason[:255],
        # The provider accepted it when the call was made, not when the evidence arrived.
        sent_at=Coalesce(F("sent_at"), F("sending_started_at"), Value(occurred_at)),
        provider_message_id=Coalesce(NullIf(F("provider_message_id"), Value("")), Value(provider_message_id)),
        updated_at=now,
    )


@transition(State.UNKNOWN, to=(State.NOT_ACCEPTED,))
def send_judge_not_accepted(*, send_id: int, now: datetime) -> int:
    """The webhook was live for later sends and posted nothing for this one: resent automatically, once."""
    return Send.objects.filter(pk=send_id, state__in=sources_of(send_judge_not_accepted)).update(
        state=State.NOT_ACCEPTED, reason="not accepted: resending", updated_at=now
    )


transitions_check()
