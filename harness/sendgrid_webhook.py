"""SendGrid's Event Webhook, as SendGrid calls it: event JSON and the Signed Event Webhook headers.

Used by the webhook tests and by the chaos suite (the fake SendGrid server posts callbacks with
it), so this API is kept stable:

- `webhook_keypair(secret=None) -> WebhookKeypair`: an ECDSA P-256 key pair. `.public_key` is the
  base64 DER public key exactly as SendGrid shows it (the value of
  `SENDGRID_WEBHOOK_VERIFICATION_KEY`); `.private_key` signs.
- `TEST_WEBHOOK_KEYPAIR`: a fixed key pair. pytest's environment (pyproject.toml) sets
  `SENDGRID_WEBHOOK_VERIFICATION_KEY` to its public key, so processes started by tests (gunicorn,
  qcluster) verify callbacks signed with `TEST_WEBHOOK_KEYPAIR.private_key`.
- `webhook_sign(body, private_key, timestamp=None) -> dict[str, str]`: the two
  `X-Twilio-Email-Event-Webhook-*` headers for this exact body (pass them to `requests`/`urllib`
  as they are, or to Django's test client as `headers=`).
- `sendgrid_events_for(accepted, event_type, ...) -> list[dict]`: one SendGrid-shaped event per
  recipient of a message the fake server accepted, with the message's custom_args at top level.
- `webhook_body(events) -> bytes`: the JSON array SendGrid posts.
- `WEBHOOK_PATH`: where TriggerMail receives the callbacks.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from harness.sendgrid_server import Accepted

WEBHOOK_PATH = "/anymail/sendgrid/tracking/"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

# SendGrid's event names (the `event` field). Anymail normalizes them: processed → queued,
# dropped → rejected, bounce → bounced, spamreport → complained, open → opened, click → clicked.
EVENT_TYPES = (
    "processed",
    "deferred",
    "delivered",
    "bounce",
    "dropped",
    "open",
    "click",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "group_resubscribe",
)


@dataclass(frozen=True)
class WebhookKeypair:
    private_key: ec.EllipticCurvePrivateKey
    public_key: str  # base64 DER (SubjectPublicKeyInfo), as SendGrid's settings page shows it


def webhook_keypair(secret: int | None = None) -> WebhookKeypair:
    """A fresh P-256 key pair, or the one derived from `secret` (the same on every run)."""
    curve = ec.SECP256R1()
    private_key = ec.generate_private_key(curve) if secret is None else ec.derive_private_key(secret, curve)
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return WebhookKeypair(private_key=private_key, public_key=base64.b64encode(der).decode())


# Fixed, so that the public key can be written into pytest's environment (pyproject.toml) and every
# process a test starts trusts it. Not a secret: it only ever signs test callbacks.
TEST_WEBHOOK_SECRET = 0x7269676765726D61696C2D746573742D776562686F6F6B
TEST_WEBHOOK_KEYPAIR = webhook_keypair(secret=TEST_WEBHOOK_SECRET)


def webhook_sign(body: bytes, private_key: ec.EllipticCurvePrivateKey, timestamp: str | None = None) -> dict[str, str]:
    """Sign as SendGrid does: ECDSA SHA-256 over timestamp + raw body, base64 of the DER signature."""
    timestamp = timestamp if timestamp is not None else str(int(time.time()))
    signature = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: timestamp}


def webhook_body(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events).encode()


# What SendGrid adds to each kind of event, beyond the common fields.
_DETAILS: dict[str, dict[str, Any]] = {
    "delivered": {"response": "250 2.0.0 OK", "tls": 1},
    "deferred": {"response": "421 4.7.0 try again later", "attempt": "1"},
    "bounce": {"reason": "550 5.1.1 user unknown", "status": "5.1.1", "type": "bounce"},
    "dropped": {"reason": "Bounced Address", "type": "Bounced Address"},
    "open": {"useragent": "Mozilla/5.0", "ip": "192.0.2.1"},
    "click": {"useragent": "Mozilla/5.0", "ip": "192.0.2.1", "url": "https://example.com/cart"},
    "group_unsubscribe": {"asm_group_id": 1},
    "group_resubscribe": {"asm_group_id": 1},
}


def sendgrid_events_for(
    accepted: Accepted,
    event_type: str,
    *,
    timestamp: float | None = None,
    sg_event_id: str | None = None,
    **fields: Any,
) -> list[dict[str, Any]]:
    """SendGrid's events of `event_type` for a message the fake server accepted, one per recipient.

    `sg_event_id` defaults to a fresh unique id (pass the same one again to model a redelivery);
    `timestamp` (Unix seconds) defaults to now; `fields` override or add any field.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown SendGrid event {event_type!r}; one of {', '.join(EVENT_TYPES)}")
    when = int(timestamp if timestamp is not None else time.time())
    events = []
    for index, (email, personal_args) in enumerate(_recipients(accepted)):
        event: dict[str, Any] = {
            # SendGrid merges the message's custom_args, then the recipient's personalization's
            # (Anymail puts its anymail_id there), into each event at top level.
            **accepted.custom_args,
            **personal_args,
            "email": email,
            "timestamp": when,
            "event": event_type,
            "sg_event_id": sg_event_id if sg_event_id and index == 0 else _event_id(),
            "sg_message_id": f"{accepted.message_id}.filterdrecv-5645d9c87f-l8zpc-1-{when:X}-{index}.0",
            "smtp-id": f"<{accepted.message_id}@ismtpd0001p1lon1.sendgrid.net>",
            "category": list(accepted.payload.get("categories", [])),
            **_DETAILS.get(event_type, {}),
        }
        event.update(fields)
        events.append(event)
    return events


def _recipients(accepted: Accepted) -> list[tuple[str, dict[str, Any]]]:
    return [
        (recipient["email"], dict(personalization.get("custom_args", {})))
        for personalization in accepted.payload.get("personalizations", [])
        for recipient in personalization.get("to", [])
    ]


def _event_id() -> str:
    # SendGrid's ids look like 22 url-safe base64 characters.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
