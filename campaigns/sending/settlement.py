"""Settling sends that the provider's answer left open: from webhook evidence, by time, or by a person.

A send is `unknown` when the provider may have accepted it. Three things can close that question,
and each is a conditional update on the row's state, so that applying one twice changes nothing:

- evidence: any Event Webhook event carrying the send's key proves SendGrid accepted the API call
  (even `dropped`: SendGrid took the message and then refused to deliver it) → `sent`;
- time: no evidence within UNKNOWN_GRACE_SECONDS → `abandoned`, counted on the admin index;
  or, sooner, silence while the webhook reported later sends → `not_accepted` and resent once
  (campaigns.sending.ambiguous);
- a person: "Resend after checking" creates a new send with a key of its own.

Evidence that arrives for a send after it was resent means the person got the email twice: it is
applied (the send was accepted) and flagged in the reason and on the admin index.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet

from campaigns.models import Send
from campaigns.reporting.latency import sends_latency_record
from campaigns.sending import lifecycle
from campaigns.sending.queueing import sends_enqueue
from triggermail.times import time_text

logger = logging.getLogger(__name__)

# States that claim the provider never accepted the message. Evidence against them means a bug or
# a forged callback, so it is flagged for a person, never applied: flipping a `failed` send to
# `sent` would hide the one case where our own record is wrong.
NOT_SENT_STATES = (Send.State.FAILED, Send.State.CANCELLED, Send.State.SUPPRESSED)
CONTRADICTED = "contradicted by webhook evidence"
SENT_AFTER_RESEND = "accepted after all, after its resend as"


@dataclass(frozen=True)
class Evidence:
    """What one provider event says about a send it carries the key of."""

    event_type: str
    occurred_at: datetime
    provider_message_id: str


def send_settle(send_id: int, evidence: Evidence, *, now: datetime) -> str:
    """Apply evidence of acceptance to a send: "sent", "contradicted" or "unchanged"."""
    when = time_text(evidence.occurred_at)
    reason, twice = _settled_reason(send_id, f"settled by webhook evidence: {evidence.event_type} at {when}")
    settled = lifecycle.send_settle(
        send_id=send_id,
        reason=reason,
        occurred_at=evidence.occurred_at,
        provider_message_id=evidence.provider_message_id,
        now=now,
    )
    if settled:
        sends_latency_record([send_id])
        log = logger.error if twice else logger.info
        log("send %s settled as sent by a %s event: %s", send_id, evidence.event_type, reason)
        return "sent"
    send = Send.objects.filter(pk=send_id, state__in=NOT_SENT_STATES).exclude(reason__startswith=CONTRADICTED).first()
    if send is None:
        return "unchanged"
    Send.objects.filter(pk=send_id, state=send.state, reason=send.reason).update(
        reason=f"{CONTRADICTED} ({evidence.event_type} at {when}); it was {send.state}: {send.reason}"[:255],
        updated_at=now,
    )
    logger.error("send %s is %s but a %s event says SendGrid accepted it", send_id, send.state, evidence.event_type)
    return "contradicted"


def _settled_reason(send_id: int, reason: str) -> tuple[str, bool]:
    """The reason for settling a send as sent, and whether its person may have the email twice.

    A resend still waiting is cancelled when it is claimed (campaigns.sending.checks); one that may have
    gone out means the person may have the email twice.
    """
    resends = Send.objects.filter(resend_of_id=send_id, state__in=Send.MAYBE_SENT_STATES)
    resend_ids = list(resends.values_list("pk", flat=True))
    if not resend_ids:
        return reason, False
    return f"{SENT_AFTER_RESEND} #{', #'.join(map(str, resend_ids))}: the person may have it twice; {reason}", True


def sends_needing_attention() -> QuerySet[Send]:
    """Sends a person must look at: unknown, or abandoned and not yet resent.

    Counted on every admin index page, so it stays one COUNT on indexed columns (state; resend_of).
    """
    resent = Send.objects.filter(resend_of=OuterRef("pk"))
    return Send.objects.filter(state__in=[Send.State.UNKNOWN, Send.State.ABANDONED]).filter(~Exists(resent))


def sends_sent_twice() -> QuerySet[Send]:
    """Resends whose original was accepted after all: each is a person who may have the email twice.

    The risk of resending, made visible: counted on the admin index. Reads the resends (rare, found
    through the resend_of index) rather than every sent send.
    """
    return Send.objects.filter(
        resend_of__isnull=False, state__in=Send.MAYBE_SENT_STATES, resend_of__state=Send.State.SENT
    )


def unknown_sends_abandon(*, now: datetime) -> int:
    """Unknown sends with no evidence within the grace window go to a person; return how many."""
    grace = timedelta(seconds=settings.UNKNOWN_GRACE_SECONDS)
    return lifecycle.sends_abandon(
        started_before=now - grace,
        reason=f"no webhook evidence within {grace} of the attempt; it may have arrived: a person decides",
        now=now,
    )


def send_resend(send_id: int, *, by: str, now: datetime) -> Send | None:
    """A person's deliberate second attempt at an abandoned send; None if it is not one (any more).

    The new send has a key of its own (the original's stays reserved, so the original can never be
    retried), is due now and goes through the same re-checks as any send when it is claimed.
    """
    with transaction.atomic():
        # Locked, so that two people confirming at once take turns and the second sees the resend.
        original = Send.objects.select_for_update().filter(pk=send_id, state=Send.State.ABANDONED).first()
        if original is None or original.resends.filter(state__in=Send.LIVE_STATES).exists():
            return None
        try:
            resend = resend_create(original, reason=f"resend of send #{original.pk} by {by}", now=now)
        except IntegrityError:
            # The live-key constraint: this resend exists already (SQLite ignores the row lock).
            return None
        Send.objects.filter(pk=original.pk, state=Send.State.ABANDONED).update(
            reason=f"resent by {by} at {time_text(now)} as send #{resend.pk}"[:255], updated_at=now
        )
    logger.info("send %s resent by %s as send %s", original.pk, by, resend.pk)
    return resend


def resend_create(original: Send, *, reason: str, now: datetime) -> Send:
    """A new send standing in for `original`, due now, queued when the transaction commits.

    Its key is the original's plus `#resend-N` (the original's stays reserved, so the original can
    never be retried). The live-key constraint makes a second resend with the same number fail
    with IntegrityError, in a savepoint, so that the caller's transaction can go on or roll back.
    """
    number = original.resends.count() + 1
    with transaction.atomic():
        resend = lifecycle.resend_insert(
            rule_id=original.rule_id,
            contact_id=original.contact_id,
            event_id=original.event_id,
            triggered_at=original.triggered_at,
            dedupe_key=f"{original.dedupe_key}#resend-{number}"[:255],
            due_at=now,
            resend_of=original,
            reason=reason[:255],
            # The same email as the original: an A/B test's variant is the contact's, whoever resends.
            variant=original.variant,
        )
    sends_enqueue([resend.pk], now=now)
    return resend
