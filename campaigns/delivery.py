"""Delivering one due send: claim, re-check, reserve its key, call the provider, record.

The key is reserved (a unique row) and committed together with the `sending` state *before* the
provider is called. Whatever happens next, a second attempt finds the key and does not call the
provider; only an answer that proves the message was not accepted releases the key.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from anymail.message import AnymailMessage
from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from campaigns.consent import preferences_url, unsubscribe_headers, unsubscribe_url
from campaigns.latency import send_latency_record
from campaigns.models import Category, DedupePolicy, IdempotencyKey, Send, Template
from campaigns.provider import Outcome, ProviderResult, provider_send
from campaigns.recheck import send_recheck
from campaigns.rendering import RenderError, render_context, template_render
from campaigns.timing import send_timing_check
from events.models import Contact

logger = logging.getLogger(__name__)

METADATA_KEY = "triggermail_key"
METADATA_SEND = "triggermail_send"


@dataclass(frozen=True)
class Claim:
    send_id: int
    key: str
    message: AnymailMessage


RECORD_ATTEMPTS = 3


def sends_deliver(send_ids: list[int]) -> dict[str, int]:
    """Deliver each of these sends that is still due; count the outcomes."""
    counts: dict[str, int] = {}
    for send_id in send_ids:
        try:
            outcome = send_deliver(send_id)
        except DatabaseError:
            # One send's trouble (the database went away) must not hold up the rest of the chunk;
            # a send left `scheduled` is queued again by the dispatcher.
            logger.exception("send %s: database error", send_id)
            connection.close()
            outcome = "database_error"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def send_deliver(send_id: int) -> str:
    claim = send_claim(send_id, now=timezone.now())
    if claim is None:
        return "not_claimed"
    result = provider_send(claim.message)
    _record_with_reconnect(claim, result)
    return result.outcome.value


def _record_with_reconnect(claim: Claim, result: ProviderResult) -> None:
    # The provider's answer exists only in this process: losing it to a dropped database connection
    # would turn a sent email into `unknown`. Recording is a conditional update on the send's state,
    # so doing it again after a failed or uncertain commit is harmless.
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            send_record(claim, result, now=timezone.now())
            return
        except (OperationalError, InterfaceError):
            if attempt == RECORD_ATTEMPTS:
                raise
            logger.warning("send %s: recording the provider's answer failed; reconnecting", claim.send_id)
            connection.close()
            time.sleep(0.2 * attempt)


def message_build(send: Send) -> AnymailMessage:
    template, contact = send.rule.template, send.contact
    properties = send.event.properties if send.event is not None else {}
    context = render_context(
        properties=properties,
        user_id=contact.user_id,
        email=contact.email,
        traits=contact.traits,
        unsubscribe_url=unsubscribe_url(contact),
        preferences_url=preferences_url(contact),
    )
    message = message_compose(template, context, to=contact.email)
    # Our key travels with the message (SendGrid custom_args) so that webhook events prove which
    # send they belong to.
    message.metadata = {METADATA_KEY: send.dedupe_key, METADATA_SEND: str(send.pk)}
    message.tags = [template.category, send.rule.name[:100]]
    if template.category == Category.MARKETING:
        # RFC 8058 one-click unsubscribe (Anymail passes these as SendGrid `headers`); mailbox
        # providers require it of bulk senders. Transactional email is not a list to leave.
        message.extra_headers.update(unsubscribe_headers(contact))
    return message


def message_compose(
    template: Template, context: dict[str, Any], *, to: str, subject_prefix: str = ""
) -> AnymailMessage:
    """The email a template makes for one address: rendered here, or by SendGrid from a dynamic template.

    Shared by real sends and the admin's test email (campaigns.preview), so a test shows exactly
    what a contact would get. Raises RenderError for a broken template.
    """
    message = AnymailMessage(to=[to], from_email=template.from_email or settings.DEFAULT_FROM_EMAIL)
    if template.sendgrid_template_id:
        # SendGrid renders the subject from its own template; a prefix cannot reach it.
        message.template_id = template.sendgrid_template_id
        message.merge_global_data = context
    else:
        rendered = template_render(template, context)
        message.subject = subject_prefix + rendered.subject
        message.body = rendered.text
        if rendered.html:
            message.attach_alternative(rendered.html, "text/html")
    return message


def key_expiry(send: Send, now: datetime) -> datetime | None:
    if send.rule.dedupe_policy in (DedupePolicy.ONCE_PER_USER, DedupePolicy.PER_PROPERTY):
        return None
    return now + timedelta(days=settings.IDEMPOTENCY_KEY_DAYS)


def _finish(send: Send, state: str, reason: str, **fields: object) -> None:
    Send.objects.filter(pk=send.pk, state=Send.State.SCHEDULED).update(state=state, reason=reason[:255], **fields)


def send_claim(send_id: int, *, now: datetime) -> Claim | None:
    """Move a due send to `sending` with its key reserved, committed; None if not ours to send."""
    with transaction.atomic():
        send = (
            Send.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("rule__template", "contact", "event")
            .filter(pk=send_id, state=Send.State.SCHEDULED, due_at__lte=now)
            .first()
        )
        if send is None:
            return None
        # Claims for one contact take turns, so that two workers cannot both pass the cooldown
        # re-check or take the last slot of a frequency cap for the same contact (each would see
        # the other's send as still scheduled).
        Contact.objects.select_for_update().filter(pk=send.contact_id).first()
        # The timing check counts sends for the caps, so it runs while the contact row is locked.
        verdict = send_recheck(send, now=now) or send_timing_check(send, now=now)
        if verdict is not None:
            _finish(send, verdict.state, verdict.reason, **verdict.changes())
            return None
        try:
            message = message_build(send)
        except RenderError as exc:
            _finish(send, Send.State.FAILED, f"template error in {exc}", last_error=str(exc))
            return None
        try:
            with transaction.atomic():
                IdempotencyKey.objects.create(key=send.dedupe_key, send=send, expires_at=key_expiry(send, now))
        except IntegrityError:
            _finish(send, Send.State.CANCELLED, f"duplicate: key {send.dedupe_key} was already used")
            return None
        Send.objects.filter(pk=send.pk).update(
            state=Send.State.SENDING,
            reason="",
            attempts=send.attempts + 1,
            sending_started_at=now,
            to_email=send.contact.email,
        )
    return Claim(send_id=send.pk, key=send.dedupe_key, message=message)


def _retry_delay(attempts: int, retry_after: float | None) -> timedelta:
    if retry_after is not None:
        return timedelta(seconds=max(1.0, retry_after))
    # 30 s, 1 min, 2 min, ... capped at one hour.
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def send_record(claim: Claim, result: ProviderResult, *, now: datetime) -> None:
    """Record the provider's answer. A stale-marked (`unknown`) send still becomes `sent`."""
    in_flight = Send.objects.filter(pk=claim.send_id, state__in=[Send.State.SENDING, Send.State.UNKNOWN])
    with transaction.atomic():
        if result.outcome is Outcome.ACCEPTED:
            sent = in_flight.update(
                state=Send.State.SENT, reason="", sent_at=now, provider_message_id=result.message_id
            )
            if sent:
                send_latency_record(claim.send_id)
        elif result.outcome is Outcome.AMBIGUOUS:
            in_flight.update(
                state=Send.State.UNKNOWN,
                reason="the provider's answer was ambiguous; it may have been sent, so it is not retried",
                last_error=result.error,
            )
            logger.warning("send %s is unknown: %s", claim.send_id, result.error)
        else:
            _record_not_sent(claim, result, in_flight, now=now)


def _record_not_sent(claim: Claim, result: ProviderResult, in_flight: QuerySet[Send], *, now: datetime) -> None:
    # Proven not sent: release the key so that this send (and only it) may be tried again.
    IdempotencyKey.objects.filter(key=claim.key, send_id=claim.send_id).delete()
    attempts = Send.objects.filter(pk=claim.send_id).values_list("attempts", flat=True).first() or 0
    if result.outcome is Outcome.RETRY and attempts < settings.SEND_MAX_ATTEMPTS:
        # Only from `sending`: a send the stale sweep already called `unknown` is never rescheduled.
        rescheduled = in_flight.filter(state=Send.State.SENDING).update(
            state=Send.State.SCHEDULED,
            reason=f"not sent (attempt {attempts}); retrying",
            due_at=now + _retry_delay(attempts, result.retry_after),
            enqueued_at=None,
            last_error=result.error,
        )
        if rescheduled:
            return
    # Also from `unknown` (a slow answer after the stale sweep): the answer proves it was not sent
    # and the key is released, so the row must not go on saying "maybe sent".
    in_flight.update(
        state=Send.State.FAILED,
        reason=f"not sent after {attempts} attempt(s): provider refused it"
        if result.outcome is Outcome.REJECTED
        else f"not sent after {attempts} attempts",
        last_error=result.error,
    )
