"""Every place Segment's spec (and the SDKs that follow it) puts a person's facts is read.

The payloads here are the shapes the SDKs' own source builds (site-packages/rudderstack/analytics,
tests/sdk/node_modules); tests/test_sdk_matrix.py runs the SDKs themselves.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine

from events.models import Contact, Event

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def contact(user_id: str = "u1") -> tuple[str, str, str, dict[str, Any]]:
    found = Contact.objects.get(user_id=user_id)
    return found.email, found.timezone, found.locale, found.traits


def test_it_takes_the_email_from_context_traits_of_an_identify_as_rudderstacks_python_sdk_sends_it(api):
    # rudder-sdk-python 2.1.9, Client.identify: `context['traits'] = traits`, no top-level traits,
    # `anonymousId: None`, gzip by default.
    message: dict[str, Any] = {"type": "identify", "userId": "u1", "anonymousId": None, "messageId": "r-1"}
    message["context"] = {"traits": {"email": "ann@example.com", "first_name": "Ann"}, "library": {"name": "x"}}
    assert api.batch([message], gzipped=True).status_code == 200
    email, _, _, traits = contact()
    assert (email, traits["first_name"]) == ("ann@example.com", "Ann")


def test_an_identify_calls_own_traits_win_over_its_context_traits(api):
    message = {"type": "identify", "userId": "u1", "traits": {"email": "new@example.com"}}
    message["context"] = {"traits": {"email": "old@example.com", "plan": "pro"}}
    assert api.batch([message]).status_code == 200
    email, _, _, traits = contact()
    assert (email, traits["plan"]) == ("new@example.com", "pro")


def test_it_reads_time_zone_and_locale_from_segments_standard_context_fields(api):
    message: dict[str, Any] = {"type": "track", "event": "opened_app", "userId": "u1"}
    message["context"] = {"timezone": "Europe/Paris", "locale": "fr-FR", "traits": {"email": "ann@example.com"}}
    assert api.batch([message]).status_code == 200
    assert contact()[:3] == ("ann@example.com", "Europe/Paris", "fr-FR")


def test_a_trait_names_the_zone_and_locale_before_the_devices_context(api):
    context = {"timezone": "Europe/Paris", "locale": "fr-FR", "traits": {"timezone": "Asia/Tokyo", "locale": "ja-JP"}}
    assert api.batch([{"type": "identify", "userId": "u1", "context": context}]).status_code == 200
    assert contact()[1:3] == ("Asia/Tokyo", "ja-JP")


def test_it_never_takes_an_email_from_a_track_calls_properties(api):
    # `invite_sent` carries the invitee's address: mailing it as the sender's would reach a stranger.
    ann = {"type": "identify", "userId": "u1", "traits": {"email": "ann@example.com"}}
    invite = {"type": "track", "event": "invite_sent", "userId": "u1", "properties": {"email": "friend@example.com"}}
    assert api.batch([ann, invite]).status_code == 200
    assert contact()[0] == "ann@example.com"


def test_it_names_the_context_traits_field_of_a_bad_email_on_an_identify(api):
    message = {"type": "identify", "userId": "u1", "context": {"traits": {"email": "ann@"}}}
    response = api.batch([message])
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["context.traits.email"]


def test_it_reads_gzip_json_that_rudderstacks_node_sdk_labels_as_a_form(api):
    # @rudderstack/rudder-sdk-node 3.0.13 posts gzip(JSON.stringify(data)) through axios, which labels
    # a raw buffer application/x-www-form-urlencoded.
    message = {"type": "identify", "userId": "u1", "traits": {"email": "ann@example.com"}, "messageId": "n-1"}
    body = gzip.compress(json.dumps({"batch": [message]}).encode())
    response = api.post(
        "/v1/batch", body, content_type="application/x-www-form-urlencoded", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 200, response.json()
    assert contact()[0] == "ann@example.com"


def test_it_still_refuses_a_real_form_or_another_media_type_with_415(api):
    form = api.post("/v1/batch", b"batch=1", content_type="application/x-www-form-urlencoded")
    xml = api.post("/v1/batch", b"<batch/>", content_type="application/xml")
    assert [(r.status_code, r.json()["errors"][0]["field"]) for r in (form, xml)] == [(415, "Content-Type")] * 2
    assert not Event.objects.exists()


def test_it_corrects_an_original_timestamp_for_the_devices_clock_skew(api):
    # RudderStack's Node SDK: originalTimestamp per message, sentAt on the message and on the batch.
    # This device's clock is an hour fast; the call was made 30 s before it was sent.
    device_now = NOW + timedelta(hours=1)
    message = {"type": "track", "event": "cart_abandoned", "userId": "u1", "messageId": "n-2"}
    message |= {"originalTimestamp": iso(device_now - timedelta(seconds=30)), "sentAt": iso(device_now)}
    with time_machine.travel(NOW, tick=False):
        batch = {"batch": [message], "timestamp": iso(device_now), "sentAt": iso(device_now)}
        assert api.post("/v1/batch", batch).status_code == 200
    assert Event.objects.get().occurred_at == NOW - timedelta(seconds=30)


def test_a_retried_message_without_message_id_is_recognised_by_its_original_timestamp(api):
    message = {"type": "track", "event": "cart_abandoned", "userId": "u1", "originalTimestamp": iso(NOW)}
    first = api.post("/v1/batch", {"batch": [message], "sentAt": iso(NOW)})
    retry = api.post("/v1/batch", {"batch": [message], "sentAt": iso(NOW + timedelta(seconds=2))})
    assert (first.status_code, retry.status_code) == (200, 200)
    assert Event.objects.count() == 1


def test_it_takes_analytics_androids_gzip_batch_at_v1_import_as_v1_batch(api):
    # analytics-android (Segment's classic Android SDK) posts its gzip batch to /v1/import.
    batch = {
        "batch": [
            {"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}, "messageId": "a-1"},
            {"type": "track", "userId": "u1", "event": "app_opened", "messageId": "a-2"},
        ],
        "sentAt": iso(datetime.now(UTC)),
    }
    body = gzip.compress(json.dumps(batch).encode())

    imported = api.post("/v1/import", body, HTTP_CONTENT_ENCODING="gzip")
    again = api.post("/v1/batch", body, HTTP_CONTENT_ENCODING="gzip")

    assert (imported.status_code, again.status_code) == (200, 200)
    assert sorted(Event.objects.values_list("message_id", flat=True)) == ["a-1", "a-2"]
    assert Contact.objects.get(user_id="u1").email == "u1@example.com"
