"""SendGrid's Event Webhook: every tracking event, recorded once and applied once.

Anymail's view (/anymail/sendgrid/tracking/) checks the signature and basic auth, normalizes each
SendGrid event and sends one `anymail.signals.tracking` signal per event; `CampaignsConfig.ready`
connects `tracking_event_receive` to it. A receiver that raises makes the view answer 500 and
SendGrid posts the whole batch again, so this is idempotent: the event id is unique, and what an
event changes is applied in the same transaction as the insert that recorded it, or not at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import Any

from anymail.signals import AnymailTrackingEvent
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.consent.suppression import suppression_from_provider_event
from campaigns.models import ProviderEvent, Send
from campaigns.sending.message import METADATA_KEY, METADATA_SEND
from campaigns.sending.settlement import Evidence, send_settle

logger = logging.getLogger(__name__)


def tracking_event_receive(sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    provider_event_record(event, now=timezone.now())


def provider_event_record(event: AnymailTrackingEvent, *, now: datetime) -> ProviderEvent | None:
    """Record a provider event and apply it to its send; None when it was recorded before.

    This is the one place every provider event passes exactly once: bounces, drops (rejected) and
    spam reports (complained) are recorded here, and suppressing their contacts belongs here too.
    """
    esp_event: dict[str, Any] = event.esp_event if isinstance(event.esp_event, dict) else {}
    message_id = sendgrid_message_id(esp_event)
    occurred_at = event.timestamp or now
    event_type = str(event.event_type)
    with transaction.atomic():
        try:
            # Insert and let the unique event id decide: a redelivered event (or the same event
            # arriving in two requests at once) loses here and changes nothing.
            with transaction.atomic():
                recorded = _provider_event_create(
                    event, esp_event=esp_event, message_id=message_id, occurred_at=occurred_at
                )
        except IntegrityError:
            return None
        # Bounces, drops, complaints and provider unsubscribes suppress the address, in the same
        # transaction as the record, so a failure here rolls both back and SendGrid redelivers.
        suppression_from_provider_event(recorded)
        if recorded.send_id is not None:
            send_reached_step(recorded.send_id, event_type=event_type, at=occurred_at)
            # Any event carrying our key exists only because SendGrid accepted the API call.
            evidence = Evidence(event_type=event_type, occurred_at=occurred_at, provider_message_id=message_id)
            send_settle(recorded.send_id, evidence, now=now)
        else:
            logger.info("provider event %s (%s) matches no send", recorded.event_id, event_type)
    return recorded


def _provider_event_create(
    event: AnymailTrackingEvent, *, esp_event: dict[str, Any], message_id: str, occurred_at: datetime
) -> ProviderEvent:
    """Insert the ProviderEvent row for a normalized event; IntegrityError when its id is taken."""
    metadata = event.metadata or {}
    key = str(metadata.get(METADATA_KEY, ""))[:255]
    return ProviderEvent.objects.create(
        event_id=event.event_id or _digest(esp_event),
        event_type=str(event.event_type)[:20],
        send=send_for_event(key=key, send_id=metadata.get(METADATA_SEND), message_id=message_id),
        key=key,
        provider_message_id=message_id[:255],
        recipient=(event.recipient or "")[:254],
        reject_reason=str(event.reject_reason or "")[:30],
        description=event.mta_response or event.description or "",
        occurred_at=occurred_at,
        payload=esp_event,
    )


# Anymail's normalized event types that are steps of the Dashboard's funnel → the Send column that
# keeps when the send first reached it.
FUNNEL_STEP_COLUMNS = {"delivered": "delivered_at", "opened": "opened_at", "clicked": "clicked_at"}


def send_reached_step(send_id: int, *, event_type: str, at: datetime) -> None:
    """Keep on the send when it was first delivered, opened or clicked.

    Conditional on the column being empty, so a second open or a redelivered event (whose id differs
    from the one recorded, or arrives in a race) leaves the first moment as it was.
    """
    column = FUNNEL_STEP_COLUMNS.get(event_type)
    if column is not None:
        Send.objects.filter(pk=send_id, **{f"{column}__isnull": True}).update(**{column: at})


def send_for_event(*, key: str, send_id: object, message_id: str) -> Send | None:
    """The send an event is about: by our key (and send id), else by send id, else by SendGrid's id."""
    pk = int(send_id) if isinstance(send_id, str | int) and str(send_id).isdigit() else None
    if key:
        # A key may belong to several sends (a failed send frees it for a later one); the id says
        # which, and otherwise the live send holding the key is the one SendGrid can have.
        same_key = Send.objects.filter(dedupe_key=key)
        return (pk is not None and same_key.filter(pk=pk).first()) or same_key.filter(
            state__in=Send.LIVE_STATES
        ).first()
    if pk is not None:
        return Send.objects.filter(pk=pk).first()
    if message_id:
        return Send.objects.filter(provider_message_id=message_id).exclude(provider_message_id="").first()
    return None


def sendgrid_message_id(esp_event: dict[str, Any]) -> str:
    """SendGrid's X-Message-Id: sg_message_id is that id, a dot, and a per-recipient suffix."""
    return str(esp_event.get("sg_message_id", "")).split(".", 1)[0]


def _digest(esp_event: dict[str, Any]) -> str:
    # SendGrid always sends sg_event_id; without one, a verbatim redelivery still dedupes.
    return "sha256:" + hashlib.sha256(json.dumps(esp_event, sort_keys=True).encode()).hexdigest()
