"""Re-checking a send when it is due: the world may have changed during the delay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from campaigns.consent import Refusal, consent_refusal
from campaigns.models import Send
from campaigns.suppression import suppression_reason
from events.models import Event


@dataclass(frozen=True)
class Verdict:
    state: str
    reason: str
    # With state `scheduled`: not now, but then (outside the send window, over a frequency cap).
    due_at: datetime | None = None

    def changes(self) -> dict[str, object]:
        # A send moved to a later time is queued again by the dispatcher when that time comes.
        return {"due_at": self.due_at, "enqueued_at": None} if self.due_at is not None else {}


def send_recheck(send: Send, *, now: datetime) -> Verdict | None:
    """Why this send must not go out now, or None if it should."""
    rule, contact = send.rule, send.contact
    if not rule.active:
        return Verdict(Send.State.CANCELLED, f"rule {rule.name!r} was paused before the send was due")
    if rule.exit_events:
        exit_event = exit_event_since_trigger(send, now=now)
        if exit_event is not None:
            return Verdict(
                Send.State.CANCELLED, f"exit event {exit_event.name} at {exit_event.occurred_at.isoformat()}"
            )
    if rule.cooldown:
        recent = (
            Send.objects.filter(
                rule=rule,
                contact=contact,
                state__in=Send.MAYBE_SENT_STATES,
                sending_started_at__gt=now - rule.cooldown,
            )
            # A person's deliberate resend is not held back by the original it replaces.
            .exclude(pk__in=[send.pk, send.resend_of_id])
            .exists()
        )
        if recent:
            return Verdict(Send.State.CANCELLED, f"cooldown: another email from this rule within {rule.cooldown}")
    if not contact.email:
        return Verdict(Send.State.SUPPRESSED, "the contact has no email address")
    refusal = _consent_refusal(send)
    if refusal is not None:
        return Verdict(Send.State.SUPPRESSED, refusal.detail)
    return None


def _consent_refusal(send: Send) -> Refusal | None:
    contact, template = send.contact, send.rule.template
    # Read again under the contact's row lock (taken by the claim): an unsubscribe that committed
    # after the send row was read still counts.
    contact.refresh_from_db(fields=["unsubscribed_at", "unsubscribed_topics"])
    return consent_refusal(
        category=template.category,
        topic=template.topic,
        suppressed=suppression_reason(contact.email),
        unsubscribed=contact.unsubscribed_at is not None,
        unsubscribed_topics=contact.unsubscribed_topics or (),
    )


def exit_event_since_trigger(send: Send, *, now: datetime) -> Event | None:
    exits = Event.objects.filter(
        user_id=send.contact.user_id,
        type=Event.Type.TRACK,
        name__in=send.rule.exit_events,
        occurred_at__lte=now,
    ).filter(after_trigger(send.triggered_at, send.event_id))
    return exits.order_by("occurred_at").first()


def after_trigger(triggered_at: datetime, trigger_id: int | None) -> Q:
    """Events that happened after the trigger. Two events at the same instant (a clamped or coarse
    clock) are ordered by arrival: an exit stored after the trigger counts, one stored before it
    does not. The trigger itself never counts, even when its rule lists it as an exit event."""
    same_instant = Q(occurred_at=triggered_at)
    if trigger_id is not None:
        same_instant &= Q(pk__gt=trigger_id)
    return Q(occurred_at__gt=triggered_at) | same_instant
