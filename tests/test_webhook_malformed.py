"""A correctly signed SendGrid webhook whose body is malformed: 400 naming the event and the field,
logged, nothing recorded; never a 500 (which SendGrid would answer by posting it again for days)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from campaigns.models import ProviderEvent
from harness.sendgrid_webhook import sendgrid_events_for, webhook_sign


def post_signed(webhook, body: bytes) -> Any:
    headers = webhook_sign(body, webhook.keypair.private_key)
    return webhook.client.post(webhook.path, body, content_type="application/json", headers=headers)


def good_event(sendgrid) -> dict[str, Any]:
    return sendgrid_events_for(sendgrid.accepted[0], "delivered")[0]


def changed(**fields: Any):
    return lambda event: [{**event, **fields}]


def without(name: str):
    return lambda event: [{key: value for key, value in event.items() if key != name}]


# (what to post, made from one good event) → (index, field) the answer names.
MALFORMED = {
    "an object instead of an array": (lambda event: event, None, "body"),
    "a string timestamp": (changed(timestamp="1700000000"), 0, "timestamp"),
    "a 1e20 timestamp": (changed(timestamp=1e20), 0, "timestamp"),
    "a huge integer timestamp": (changed(timestamp=10**20), 0, "timestamp"),
    "a negative timestamp": (changed(timestamp=-1), 0, "timestamp"),
    "a fractional timestamp": (changed(timestamp=1700000000.5), 0, "timestamp"),
    "a boolean timestamp": (changed(timestamp=True), 0, "timestamp"),
    "no timestamp": (without("timestamp"), 0, "timestamp"),
    "a numeric event name": (changed(event=3), 0, "event"),
    "no event name": (without("event"), 0, "event"),
    "a numeric sg_message_id": (changed(sg_message_id=12), 0, "sg_message_id"),
    "an object sg_event_id": (changed(sg_event_id={"a": 1}), 0, "sg_event_id"),
    "a numeric email": (changed(email=5), 0, "email"),
    "no email": (without("email"), 0, "email"),
    "a numeric drop reason": (changed(event="dropped", type=5), 0, "type"),
    "a category of numbers": (changed(category=[1, 2]), 0, "category"),
    "a NUL character in a detail": (changed(response="250\x00OK"), 0, "response"),
    "a number in the array": (lambda event: [7], 0, "event"),
    "the bad event second": (
        lambda event: [event, {**event, "sg_event_id": "x2", "timestamp": "soon"}],
        1,
        "timestamp",
    ),
}


@pytest.mark.parametrize("make, index, field", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_signed_malformed_body_is_refused_naming_the_field_and_nothing_is_recorded(
    unknown, sendgrid, webhook, caplog, make, index, field
):
    body = json.dumps(make(good_event(sendgrid))).encode()

    with caplog.at_level(logging.WARNING, logger="campaigns.sending.webhook_view"):
        response = post_signed(webhook, body)

    assert response.status_code == 400
    answer = response.json()
    assert (answer["index"], answer["field"]) == (index, field)
    assert answer["reason"] and field in answer["error"]
    assert not ProviderEvent.objects.exists()
    unknown.refresh_from_db()
    assert unknown.state == "unknown"
    assert any("SendGrid webhook body refused" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe[]", b""], ids=["not JSON", "not UTF-8", "empty"])
def test_a_signed_body_that_is_not_json_text_is_refused(unknown, webhook, body):
    response = post_signed(webhook, body)

    assert response.status_code == 400
    assert response.json()["field"] == "body"
    assert not ProviderEvent.objects.exists()


def test_an_unsigned_malformed_body_is_refused_by_the_signature_check_first(unknown, webhook):
    response = webhook.client.post(webhook.path, b'{"event": 1}', content_type="application/json")

    assert response.status_code == 400
    # Anymail's own refusal (no JSON reason): an unsigned caller learns nothing about the checks.
    assert response.get("Content-Type", "").startswith("text/html")
    assert not ProviderEvent.objects.exists()


def test_a_well_formed_body_with_extra_sendgrid_fields_is_still_recorded(unknown, sendgrid, webhook):
    event = {**good_event(sendgrid), "asm_group_id": 1, "tls": 1, "attempt": "1", "marketing_campaign_id": 9}

    assert webhook.post([event]).status_code == 200
    unknown.refresh_from_db()
    assert unknown.state == "sent"
