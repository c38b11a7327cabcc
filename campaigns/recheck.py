"""Re-checking a send when it is due: the world may have changed during the delay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from campaigns.models import Send
from events.models import Event


@dataclass(frozen=True)
class Verdict:
    state: str
    reason: str


def send_recheck(send: Send, *, now: datetime) -> Verdict | None:
    """Why this send must not go out now, or None if it should."""
    rule, contact = send.rule, send.contact
    if not rule.active:
        return Verdict(Send.State.CANCELLED, f"rule {rule.name!r} was paused before the send was due")
    if rule.exit_events:
        exit_event = _exit_event_since_trigger(send, now=now)
        if exit_event is not None:
            return Verdict(
                Send.State.CANCELLED, f"exit event {exit_event.name} at {exit_event.occurred_at.isoformat()}"
            )
    if rule.cooldown:
        recent = (
            Send.objects.filter(
                rule=rule,
                contact=contact,
                state__in=[Send.State.SENT, Send.State.SENDING, Send.State.UNKNOWN],
                sending_started_at__gt=now - rule.cooldown,
            )
            .exclude(pk=send.pk)
            .exists()
        )
        if recent:
            return Verdict(Send.State.CANCELLED, f"cooldown: another email from this rule within {rule.cooldown}")
    if not contact.email:
        return Verdict(Send.State.SUPPRESSED, "the contact has no email address")
    return None


def _exit_event_since_trigger(send: Send, *, now: datetime) -> Event | None:
    exits = Event.objects.filter(
        user_id=send.contact.user_id,
        type=Event.Type.TRACK,
        name__in=send.rule.exit_events,
        occurred_at__gte=send.triggered_at,
        occurred_at__lte=now,
    )
    if send.event_id is not None:
        # A rule whose trigger is also an exit event is not cancelled by its own trigger.
        exits = exits.exclude(pk=send.event_id)
    return exits.order_by("occurred_at").first()
