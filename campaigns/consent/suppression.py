"""Suppressed addresses: what the provider told us must not be emailed again, until a person lifts it.

A suppression is about the address, not a list: after a hard bounce, a drop, a spam complaint or an
unsubscribe at the provider, no email of any category goes to it. Soft bounces (a full mailbox, a
greylisting server) are temporary, so they are only counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q

from campaigns.models import ProviderEvent, Suppression
from triggermail.text import text_storable

# Anymail's normalized event types that make an address unusable.
SUPPRESSING_EVENTS = {
    "bounced": Suppression.Reason.BOUNCE,
    "rejected": Suppression.Reason.DROPPED,
    "complained": Suppression.Reason.COMPLAINT,
    "unsubscribed": Suppression.Reason.PROVIDER_UNSUBSCRIBE,
}


def email_normalize(email: str) -> str:
    # Mailbox providers treat the local part case-insensitively in practice; one spelling per
    # address is what lets the one-active-row constraint hold.
    return email.strip().lower()


def provider_event_is_soft_bounce(provider_event: ProviderEvent) -> bool:
    # Anymail calls SendGrid's "blocked" bounces `bounced` too, but the receiving server refused
    # the message for now (reputation, rate), not the address for good.
    payload = provider_event.payload if isinstance(provider_event.payload, dict) else {}
    return provider_event.event_type == "deferred" or (
        provider_event.event_type == "bounced" and str(payload.get("type", "")).lower() == "blocked"
    )


def suppression_from_provider_event(provider_event: ProviderEvent) -> Suppression | None:
    """Suppress the event's recipient if the event says so; the new row, or None.

    Safe to call again for the same event or for a second bounce: the partial unique constraint
    keeps one active suppression per address, and the later insert loses without an error.
    """
    reason = SUPPRESSING_EVENTS.get(provider_event.event_type)
    email = email_normalize(provider_event.recipient)
    if reason is None or not email or provider_event_is_soft_bounce(provider_event):
        return None
    detail = provider_event.reject_reason or ""
    if provider_event.description:
        detail = f"{detail}: {provider_event.description}" if detail else provider_event.description
    try:
        with transaction.atomic():
            return Suppression.objects.create(email=email, reason=reason, detail=detail, provider_event=provider_event)
    except IntegrityError:
        return None


def suppression_reasons(emails: Iterable[str]) -> dict[str, str]:
    """Normalized address → why it is suppressed, in words, for the addresses with an active suppression."""
    # An address the database cannot store cannot have been suppressed, and querying it would fail
    # (a marketer may type anything as the simulator's email).
    wanted = {email_normalize(email) for email in emails if email and text_storable(email)}
    rows = Suppression.objects.filter(email__in=wanted, lifted_at__isnull=True).values_list("email", "reason")
    return {email: str(Suppression.Reason(reason).label) for email, reason in rows}


def suppression_reason(email: str) -> str:
    """Why this address is suppressed, in words; "" when it is not."""
    return suppression_reasons([email]).get(email_normalize(email), "")


def suppressions_lift(suppressions: Iterable[Suppression], *, by: str, now: datetime) -> list[Suppression]:
    """Lift the active ones among these; the rows that this call lifted."""
    lifted = []
    for suppression in suppressions:
        # Conditional, so two people lifting at once record one of them, once.
        if Suppression.objects.filter(pk=suppression.pk, lifted_at__isnull=True).update(lifted_at=now, lifted_by=by):
            suppression.lifted_at, suppression.lifted_by = now, by
            lifted.append(suppression)
    return lifted


def soft_bounce_count(email: str) -> int:
    """Soft bounces reported for this address (kept as long as provider events are)."""
    if not email:
        return 0
    return ProviderEvent.objects.filter(
        Q(event_type="deferred") | Q(event_type="bounced", payload__type="blocked"),
        recipient__iexact=email,
    ).count()
