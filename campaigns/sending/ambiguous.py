"""Ambiguous sends past their time: resent once when the webhook's silence is evidence, else a person.

An `unknown` send may or may not have been accepted by SendGrid, which has no idempotency key. Its
Event Webhook posts at least one event ("processed", then "delivered", "bounced" …) for every
message it accepts, and any of them settles the send as `sent` (campaigns.sending.settlement). So when the
webhook is demonstrably working — it has posted events for sends whose provider calls were made
*after* this one's — and still nothing came for this send, the honest reading is that SendGrid
never accepted it. Under AMBIGUOUS_SEND_POLICY=resend_when_webhook_live such a send becomes
`not_accepted` and is resent once, as a new send with a key of its own; with `ask_a_person`, or
while the webhook is not shown to be live, it becomes `abandoned` after UNKNOWN_GRACE_SECONDS as
before. A resend is never resent automatically: if it too ends ambiguous, a person decides.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from campaigns.models import ProviderEvent, Send
from campaigns.sending import lifecycle
from campaigns.sending.settlement import resend_create, unknown_sends_abandon

logger = logging.getLogger(__name__)

RESEND_POLICY = "resend_when_webhook_live"
# Unknown sends judged per pass: a killed worker leaves at most DELIVERY_CONCURRENCY of them.
RESEND_BATCH = 100
# How many of the latest webhook events webhook_live_after looks at: at a few hundred events a
# second, the last seconds; in a quiet hour, further back. Either way some are for recent sends.
LIVENESS_EVENTS = 1000


def webhook_live_after(attempted_at: datetime, *, now: datetime) -> bool:
    """Whether SendGrid's signed Event Webhook demonstrably worked for a send attempted at `attempted_at`.

    Precisely: among the LIVENESS_EVENTS provider events received most recently (after
    `attempted_at`, by `now`; recorded only from the webhook, whose signature the view verified),
    one is for a send whose latest provider call started after `attempted_at`. SendGrid posts
    events in about the order it accepts messages, give or take seconds to minutes, so events for
    later sends mean the webhook had caught up past this send's moment; AMBIGUOUS_RESEND_AFTER is
    the margin for one message's events lagging behind its neighbours'. It assumes the hosts'
    clocks agree (NTP) to well within that margin. Looking only at the latest events can miss
    liveness (then the send goes to a person, as before), never invent it.

    If it holds for an attempt it holds for every earlier one. Its cost is bounded whatever the
    tables' size and whatever PostgreSQL's statistics say: the subquery's LIMIT keeps it apart,
    a backward scan of the received_at index, then at most LIVENESS_EVENTS sends by primary key.
    """
    latest = (
        ProviderEvent.objects.filter(received_at__gt=attempted_at, received_at__lte=now, send__isnull=False)
        .order_by("-received_at")
        .values("send_id")[:LIVENESS_EVENTS]
    )
    return Send.objects.filter(pk__in=latest, sending_started_at__gt=attempted_at).exists()


def unknown_sends_resolve(*, now: datetime) -> tuple[int, int]:
    """The dispatcher's slow check for ambiguous sends: (resent automatically, abandoned)."""
    resent = unknown_sends_resend(now=now) if settings.AMBIGUOUS_SEND_POLICY == RESEND_POLICY else 0
    return resent, unknown_sends_abandon(now=now)


def resendable_unknown_sends(*, now: datetime) -> list[int]:
    """Unknown sends past AMBIGUOUS_RESEND_AFTER, with no event of their own, while the webhook is live.

    A resend (of either kind) is never among them: resending it again could repeat the same doubt
    without end, so it goes to a person. Oldest first, and the first send for which the webhook is
    not shown live ends the list: it is not shown live for any later send either.
    """
    cutoff = now - timedelta(seconds=settings.AMBIGUOUS_RESEND_AFTER)
    candidates = (
        Send.objects.filter(state=Send.State.UNKNOWN, resend_of__isnull=True, sending_started_at__lt=cutoff)
        .filter(~Exists(ProviderEvent.objects.filter(send_id=OuterRef("pk"))))
        .order_by("sending_started_at", "pk")
        .values_list("pk", "sending_started_at")[:RESEND_BATCH]
    )
    resendable = []
    for send_id, attempted_at in candidates:
        if attempted_at is None or not webhook_live_after(attempted_at, now=now):
            break
        resendable.append(send_id)
    return resendable


def unknown_sends_resend(*, now: datetime) -> int:
    """Judge resendable unknown sends not accepted and resend each once; return how many."""
    ids = resendable_unknown_sends(now=now)
    return sum(1 for send_id in ids if unknown_send_resend(send_id, now=now) is not None)


def unknown_send_resend(send_id: int, *, now: datetime) -> Send | None:
    """Move one unknown send to `not_accepted` and create its resend, together; None if another
    process (or evidence) changed it first."""
    with transaction.atomic():
        # The conditional update takes the row: a second host running the same pass waits for this
        # transaction and then finds the send no longer `unknown`, so it changes nothing.
        taken = lifecycle.send_judge_not_accepted(send_id=send_id, now=now)
        original = Send.objects.filter(pk=send_id).first() if taken else None
        if original is None:
            return None
        try:
            resend = resend_create(
                original, reason=f"automatic resend of send #{send_id}: not accepted, webhook live", now=now
            )
        except IntegrityError:
            # The live-key constraint: a resend with this number exists; undo the state change too.
            transaction.set_rollback(True)
            return None
        Send.objects.filter(pk=send_id, state=Send.State.NOT_ACCEPTED).update(
            reason=f"not accepted (webhook live, no event of its own): resent automatically as #{resend.pk}"
        )
    logger.warning("send %s had no webhook event while later sends did: resent automatically as %s", send_id, resend.pk)
    return resend
