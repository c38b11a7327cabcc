"""Only SendGrid can tell TriggerMail that a send arrived: signed callbacks, optional basic auth."""

from __future__ import annotations

import base64
import os
import warnings

import pytest
from anymail.exceptions import AnymailInsecureWebhookWarning
from django.utils import timezone

from campaigns.models import ProviderEvent, Send
from harness.sendgrid_webhook import (
    SIGNATURE_HEADER,
    TEST_WEBHOOK_KEYPAIR,
    TIMESTAMP_HEADER,
    sendgrid_events_for,
    webhook_body,
    webhook_keypair,
    webhook_sign,
)


def nothing_changed(send: Send) -> bool:
    send.refresh_from_db()
    return send.state == "unknown" and not ProviderEvent.objects.exists()


def test_a_valid_signature_is_accepted_and_recorded(unknown, sendgrid, webhook):
    assert webhook.post(sendgrid_events_for(sendgrid.accepted[0], "delivered")).status_code == 200
    unknown.refresh_from_db()
    assert unknown.state == "sent"


def test_a_signature_from_another_key_is_refused_and_changes_nothing(unknown, sendgrid, webhook):
    body = webhook_body(sendgrid_events_for(sendgrid.accepted[0], "delivered"))
    forged = webhook_sign(body, webhook_keypair().private_key)

    response = webhook.client.post(webhook.path, body, content_type="application/json", headers=forged)

    assert response.status_code == 400
    assert nothing_changed(unknown)


def test_a_body_changed_after_signing_is_refused(unknown, sendgrid, webhook):
    events = sendgrid_events_for(sendgrid.accepted[0], "delivered")
    headers = webhook_sign(webhook_body(events), webhook.keypair.private_key)
    events[0]["event"] = "open"

    response = webhook.client.post(webhook.path, webhook_body(events), content_type="application/json", headers=headers)

    assert response.status_code == 400
    assert nothing_changed(unknown)


def test_a_replayed_signature_with_another_timestamp_is_refused(unknown, sendgrid, webhook):
    body = webhook_body(sendgrid_events_for(sendgrid.accepted[0], "delivered"))
    headers = webhook_sign(body, webhook.keypair.private_key, timestamp="1700000000")
    headers[TIMESTAMP_HEADER] = "1700000001"

    response = webhook.client.post(webhook.path, body, content_type="application/json", headers=headers)

    assert response.status_code == 400
    assert nothing_changed(unknown)


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER])
def test_a_missing_signature_header_is_refused_when_verification_is_on(unknown, sendgrid, webhook, missing):
    body = webhook_body(sendgrid_events_for(sendgrid.accepted[0], "delivered"))
    headers = webhook_sign(body, webhook.keypair.private_key)
    del headers[missing]

    response = webhook.client.post(webhook.path, body, content_type="application/json", headers=headers)

    assert response.status_code == 400
    assert nothing_changed(unknown)


def test_a_garbled_signature_is_refused(unknown, sendgrid, webhook):
    body = webhook_body(sendgrid_events_for(sendgrid.accepted[0], "delivered"))
    headers = {SIGNATURE_HEADER: "not base64!", TIMESTAMP_HEADER: str(int(timezone.now().timestamp()))}

    response = webhook.client.post(webhook.path, body, content_type="application/json", headers=headers)

    assert response.status_code == 400
    assert nothing_changed(unknown)


def test_basic_auth_is_required_when_a_webhook_secret_is_set(unknown, sendgrid, webhook, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "sendgrid:s3cret"}
    events = sendgrid_events_for(sendgrid.accepted[0], "delivered")

    refused = webhook.post(events)
    wrong = webhook.post(events, headers={"Authorization": "Basic " + base64.b64encode(b"sendgrid:guess").decode()})
    assert (refused.status_code, wrong.status_code) == (400, 400)
    assert nothing_changed(unknown)

    right = webhook.post(events, headers={"Authorization": "Basic " + base64.b64encode(b"sendgrid:s3cret").decode()})
    assert right.status_code == 200
    unknown.refresh_from_db()
    assert unknown.state == "sent"


def test_a_signed_webhook_without_basic_auth_gives_no_insecure_webhook_warning(unknown, sendgrid, webhook):
    with warnings.catch_warnings():
        warnings.simplefilter("error", AnymailInsecureWebhookWarning)
        assert webhook.post(sendgrid_events_for(sendgrid.accepted[0], "delivered")).status_code == 200


def test_the_test_environment_trusts_the_fixed_test_key_pair():
    # pyproject.toml gives every process the tests start this public key; it must match the private
    # key that harness/sendgrid_webhook.py signs with.
    assert os.environ["SENDGRID_WEBHOOK_VERIFICATION_KEY"] == TEST_WEBHOOK_KEYPAIR.public_key
