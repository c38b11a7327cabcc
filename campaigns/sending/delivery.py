"""Delivering due sends: claim a batch, call the provider for each at once, record the answers.

Claiming (campaigns.sending.claiming) commits every send's key and `sending` state before any provider
call. The calls then run side by side on a few threads, since each mostly waits for the provider;
the answers are recorded together, accepted ones in one transaction.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from campaigns.models import IdempotencyKey, Send
from campaigns.sending import lifecycle
from campaigns.sending.claiming import Claim, sends_claim
from campaigns.sending.provider import ProviderOutcome, ProviderResult, provider_send
from triggermail.durability import commit_without_waiting
from triggermail.errors import error_is_transient, error_summary

logger = logging.getLogger(__name__)

RECORD_ATTEMPTS = 3
_executor: ThreadPoolExecutor | None = None


def sends_deliver(send_ids: list[int]) -> dict[str, int]:
    """Deliver each of these sends that is still due; count the outcomes.

    A slice at a time, each no larger than the calls made at once: every claimed send is in flight
    at once, so a worker killed mid-call leaves as few `sending` rows (to settle from evidence) as
    it can.
    """
    counts: Counter[str] = Counter()
    size = settings.DELIVERY_CONCURRENCY
    for start in range(0, len(send_ids), size):
        _slice_deliver(send_ids[start : start + size], counts)
    return dict(counts)


def _slice_deliver(send_ids: list[int], counts: Counter[str]) -> None:
    claims = _claims_isolated(send_ids, counts)
    results = _provider_send_all(claims)
    accepted = [(c, r) for c, r in zip(claims, results, strict=True) if r.outcome is ProviderOutcome.ACCEPTED]
    counts.update(r.outcome.value for r in results)
    try:
        if accepted:
            _with_reconnect(lambda: sends_record_accepted(accepted, now=timezone.now()), what="accepted sends")
        for claim, result in zip(claims, results, strict=True):
            if result.outcome is not ProviderOutcome.ACCEPTED:
                _with_reconnect(partial(_record_now, claim, result), what=f"send {claim.send_id}")
    except DatabaseError:
        # Nothing is lost: the sends stay `sending`, become `unknown` when stale, and the webhook's
        # evidence settles them. They are never sent again.
        logger.exception("recording the provider's answers for sends %s failed", [c.send_id for c in claims])
        connection.close()


def _claims_isolated(send_ids: Sequence[int], counts: Counter[str]) -> list[Claim]:
    """The batch's claims; a database error is retried once, then each send is claimed alone, so
    that one send's trouble does not hold up the rest (a send left `scheduled` is queued again)."""
    for _ in range(2):
        try:
            return _claims_counted(send_ids, counts)
        except DatabaseError:
            logger.warning("claiming sends %s failed; retrying", list(send_ids), exc_info=True)
            connection.close()
    claims: list[Claim] = []
    for send_id in send_ids:
        try:
            claims += _claims_counted([send_id], counts)
        except DatabaseError as exc:
            logger.exception("send %s: database error", send_id)
            connection.close()
            counts["database_error"] += 1
            if not error_is_transient(exc):
                # Alone, and not an outage: this send's own data breaks its claim (a DataError), and
                # would again on every retry. Its claim rolled back, so no key is held: it just fails.
                _send_fail_unclaimed(send_id, exc)
    return claims


def _send_fail_unclaimed(send_id: int, exc: BaseException) -> None:
    error = error_summary(exc)
    lifecycle.send_refuse(
        send_id=send_id, state=Send.State.FAILED, reason=f"error while preparing the email: {error}", last_error=error
    )


def _claims_counted(send_ids: Sequence[int], counts: Counter[str]) -> list[Claim]:
    claims = sends_claim(send_ids, now=timezone.now())
    if len(claims) < len(send_ids):
        counts["not_claimed"] += len(send_ids) - len(claims)
    return claims


def _provider_send_all(claims: list[Claim]) -> list[ProviderResult]:
    """Call the provider for every claim, up to DELIVERY_CONCURRENCY at a time; answers in order."""
    if len(claims) <= 1:
        return [provider_send(c.message) for c in claims]
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=settings.DELIVERY_CONCURRENCY, thread_name_prefix="provider")
    return list(_executor.map(lambda c: provider_send(c.message), claims))


def _record_now(claim: Claim, result: ProviderResult) -> None:
    send_record(claim, result, now=timezone.now())


def _with_reconnect(record: Callable[[], None], *, what: str) -> None:
    # The provider's answer exists only in this process: losing it to a dropped database connection
    # would turn a sent email into `unknown`. Recording is a conditional update on the send's state,
    # so doing it again after a failed or uncertain commit is harmless.
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            record()
            return
        except (OperationalError, InterfaceError):
            if attempt == RECORD_ATTEMPTS:
                raise
            logger.warning("recording the provider's answer for %s failed; reconnecting", what)
            connection.close()
            time.sleep(0.2 * attempt)


def sends_record_accepted(accepted: Sequence[tuple[Claim, ProviderResult]], *, now: datetime) -> None:
    """Record accepted sends as `sent`, with their latency. A stale-marked (`unknown`) send still
    becomes `sent`; any other state (settled meanwhile by webhook evidence) is left as it is."""
    message_ids = {claim.send_id: result.message_id for claim, result in accepted}
    with transaction.atomic():
        # Lost in a database crash, these stay `sending` and are settled from evidence, never resent.
        commit_without_waiting()
        lifecycle.sends_accept(message_ids=message_ids, now=now)


def send_record(claim: Claim, result: ProviderResult, *, now: datetime) -> None:
    """Record the provider's answer for one send."""
    if result.outcome is ProviderOutcome.ACCEPTED:
        sends_record_accepted([(claim, result)], now=now)
        return
    with transaction.atomic():
        if result.outcome is ProviderOutcome.AMBIGUOUS:
            lifecycle.send_record_ambiguous(send_id=claim.send_id, error=result.error)
            logger.warning("send %s is unknown: %s", claim.send_id, result.error)
        else:
            _record_not_sent(claim, result, now=now)


def _retry_delay(attempts: int, retry_after: float | None) -> timedelta:
    if retry_after is not None:
        return timedelta(seconds=max(1.0, retry_after))
    # 30 s, 1 min, 2 min, ... capped at one hour.
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def _record_not_sent(claim: Claim, result: ProviderResult, *, now: datetime) -> None:
    # Proven not sent: release the key so that this send (and only it) may be tried again.
    IdempotencyKey.objects.filter(key=claim.key, send_id=claim.send_id).delete()
    attempts = Send.objects.filter(pk=claim.send_id).values_list("attempts", flat=True).first() or 0
    if result.outcome is ProviderOutcome.RETRY and attempts < settings.SEND_MAX_ATTEMPTS:
        rescheduled = lifecycle.send_retry(
            send_id=claim.send_id,
            reason=f"not sent (attempt {attempts}); retrying",
            due_at=now + _retry_delay(attempts, result.retry_after),
            error=result.error,
        )
        if rescheduled:
            return
    lifecycle.send_fail(
        send_id=claim.send_id,
        reason=f"not sent after {attempts} attempt(s): provider refused it"
        if result.outcome is ProviderOutcome.REJECTED
        else f"not sent after {attempts} attempts",
        error=result.error,
    )
