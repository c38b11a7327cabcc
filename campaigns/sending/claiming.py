"""Claiming due sends: re-check, reserve each key and move it to `sending`, a batch per transaction.

The key is reserved (a unique row) and committed together with the `sending` state *before* the
provider is called. Whatever happens next, a second attempt finds the key and does not call the
provider; only an answer that proves the message was not accepted releases the key.

One transaction claims a whole batch: the sends are locked (SKIP LOCKED, so concurrent workers
share them), then their contacts in id order (so claims for one contact take turns, and two
batches cannot deadlock), the facts the checks need are read once for the batch (the rules and
settings only when they changed, campaigns.sending.claim_rules), and the keys are reserved by one
INSERT … ON CONFLICT DO NOTHING RETURNING. Commit cost is the floor of this work,
and it is paid once per batch instead of once per send.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from anymail.message import AnymailMessage
from django.conf import settings
from django.db import DatabaseError, transaction

from campaigns.authoring.rendering import RenderError
from campaigns.models import DedupePolicy, IdempotencyKey, Send
from campaigns.sending import lifecycle
from campaigns.sending.checks import send_checks_run
from campaigns.sending.claim_facts import ClaimFacts, claim_facts_load, consent_read
from campaigns.sending.claim_rules import claim_rules
from campaigns.sending.message import message_build
from triggermail.bulk import insert_new_returning
from triggermail.errors import error_summary

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    send_id: int
    key: str
    message: AnymailMessage


def sends_claim(send_ids: Sequence[int], *, now: datetime) -> list[Claim]:
    """Move the due ones of these sends to `sending` with their keys reserved, committed.

    Sends that must not go now get their new state (cancelled, suppressed, failed, moved to a later
    time) in the same transaction; sends another worker holds or already took are skipped.
    """
    with transaction.atomic():
        sends = list(
            Send.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("contact", "event")
            # Rendering reads the event's properties only; its context and traits can be large.
            .defer("event__context", "event__traits")
            .filter(pk__in=list(send_ids), state=Send.State.SCHEDULED, due_at__lte=now)
            .order_by("pk")
        )
        if not sends:
            return []
        kept = claim_rules({send.rule_id for send in sends})
        for send in sends:
            send.rule = kept.rules[send.rule_id]
        # Address and consent are read under the contacts' row locks: an unsubscribe or a new
        # address that committed after the send rows were read still counts.
        consent = consent_read({s.contact_id for s in sends}, lock=True)
        for send in sends:
            send.contact.email = consent[send.contact_id].email
        facts = claim_facts_load(
            sends,
            now=now,
            settings=kept.settings,
            consent=consent,
            engagement_conditions=kept.engagement_of(send.rule_id for send in sends),
        )
        ready = [(send, message) for send in sends if (message := _send_prepare(send, facts, now=now)) is not None]
        reserved = _keys_reserve([send for send, _ in ready], now=now)
        claims = []
        for send, message in ready:
            if send.pk in reserved:
                claims.append(Claim(send_id=send.pk, key=send.dedupe_key, message=message))
            else:
                _finish(send, Send.State.CANCELLED, f"duplicate: key {send.dedupe_key} was already used")
        lifecycle.sends_start(send_ids=[c.send_id for c in claims], now=now)
    return claims


def _send_prepare(send: Send, facts: ClaimFacts, *, now: datetime) -> AnymailMessage | None:
    """_send_check, with whatever one send raises confined to that send.

    Before its key is reserved nothing has been promised: a send whose checks or message raise (a
    contact's data no code path expected) ends `failed` with the error, and the rest of the batch goes
    on. A database error is left to the caller, which tells an outage from one send's bad data.
    """
    try:
        return _send_check(send, facts, now=now)
    except DatabaseError:
        raise
    except Exception as exc:
        error = error_summary(exc)
        logger.error("send %s could not be prepared and is marked failed: %s", send.pk, error, exc_info=exc)
        _finish(send, Send.State.FAILED, f"error while preparing the email: {error}", last_error=error)
        return None


def _send_check(send: Send, facts: ClaimFacts, *, now: datetime) -> AnymailMessage | None:
    """The message to send, or None after giving the send the state the checks call for."""
    # The caps count sends, so the checks run while the contact row is locked; the first verdict wins.
    verdict = next(send_checks_run(send, facts=facts, now=now), None)
    if verdict is not None:
        _finish(send, Send.State(verdict.state), verdict.reason, due_at=verdict.due_at)
        return None
    try:
        message = message_build(send)
    except RenderError as exc:
        _finish(send, Send.State.FAILED, f"template error in {exc}", last_error=str(exc))
        return None
    # The next send of this contact in the batch must see this one, as it would a `sending` row.
    facts.send_claimed(send, now=now)
    return message


def _finish(
    send: Send, state: Send.State, reason: str, *, last_error: str | None = None, due_at: datetime | None = None
) -> None:
    lifecycle.send_refuse(send_id=send.pk, state=state, reason=reason, last_error=last_error, due_at=due_at)


def _keys_reserve(sends: Sequence[Send], *, now: datetime) -> set[int]:
    """Reserve each send's key; the ids of the sends whose key was free (the others lost it)."""
    # Within a batch two sends can carry one key only if matching let them; the first one wins.
    first_by_key: dict[str, Send] = {}
    for send in sends:
        first_by_key.setdefault(send.dedupe_key, send)
    keys = [
        IdempotencyKey(key=send.dedupe_key, send=send, expires_at=key_expiry(send, now))
        for send in first_by_key.values()
    ]
    return {send_id for (send_id,) in insert_new_returning(keys, returning=["send"], conflict="key")}


def key_expiry(send: Send, now: datetime) -> datetime | None:
    if send.rule.dedupe_policy in (DedupePolicy.ONCE_PER_USER, DedupePolicy.PER_PROPERTY):
        return None
    return now + timedelta(days=settings.IDEMPOTENCY_KEY_DAYS)
