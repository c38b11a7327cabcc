"""What the ingest API refuses, and how it says so: every bad message and field is named."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from events.body import MAX_REQUEST_BYTES
from events.models import Event
from events.parsing import MAX_MESSAGE_BYTES
from tests.conftest import identify, track


def refusal(response: Any) -> tuple[int, str, str]:
    """(status, field, reason) of an answer that refused the whole request."""
    body = response.json()
    assert body["success"] is False and len(body["errors"]) == 1, body
    return response.status_code, body["errors"][0]["field"], body["errors"][0]["reason"]


def problems(response: Any) -> list[tuple[int, str]]:
    """(index, field) of every bad message named in a 400/413 answer."""
    return [(e["index"], e["field"]) for e in response.json()["errors"]]


def stored_names() -> list[str]:
    return sorted(Event.objects.values_list("name", flat=True))


# --- The request as a whole ------------------------------------------------------------------


def test_it_refuses_a_body_that_is_not_json_with_415(api):
    status, field, reason = refusal(api.post("/v1/batch", b"{not json"))
    assert (status, field) == (415, "body") and reason.startswith("body is not JSON")


def test_it_refuses_a_non_json_content_type_with_415(api):
    response = api.post("/v1/track", b"event=x", content_type="application/x-www-form-urlencoded")
    assert refusal(response) == (415, "Content-Type", "send application/json, not application/x-www-form-urlencoded")


def test_it_reads_text_plain_and_charset_parameters_as_json(api):
    plain = api.post("/v1/track", track("a", "u1"), content_type="text/plain")
    charset = api.post("/v1/track", track("b", "u1"), content_type="application/json; charset=utf-8")
    assert (plain.status_code, charset.status_code) == (200, 200)


def test_it_refuses_nan_which_python_reads_but_json_does_not_have(api):
    status, field, reason = refusal(api.post("/v1/track", b'{"event": "x", "userId": "u1", "properties": {"v": NaN}}'))
    assert (status, field) == (415, "body") and "NaN" in reason
    assert not Event.objects.exists()


def test_it_refuses_a_number_too_large_to_store_with_400(api):
    response = api.post("/v1/track", b'{"event": "x", "userId": "u1", "properties": {"v": -1e400}}')
    assert refusal(response) == (400, "body", "the number -1e400 is too large to store")
    assert not Event.objects.exists()


def test_it_refuses_an_encoding_other_than_gzip_with_415(api):
    response = api.post("/v1/track", track("x", "u1"), HTTP_CONTENT_ENCODING="br")
    assert refusal(response) == (415, "Content-Encoding", "send gzip or no Content-Encoding, not br")


def test_it_accepts_a_gzip_body(api):
    response = api.batch([track("cart_abandoned", "u1"), identify("u1", "u1@example.com")], gzipped=True)
    assert response.status_code == 200, response.content
    assert Event.objects.count() == 2


def test_it_refuses_a_gzip_header_on_a_body_that_is_not_gzip(api):
    status, field, reason = refusal(api.post("/v1/track", track("x", "u1"), HTTP_CONTENT_ENCODING="gzip"))
    assert (status, field) == (400, "body") and "not gzip" in reason


def test_it_refuses_a_truncated_gzip_body(api):
    raw = gzip.compress(json.dumps({"batch": [track("x", "u1")]}).encode())[:-12]
    response = api.post("/v1/batch", raw, HTTP_CONTENT_ENCODING="gzip")
    assert refusal(response)[:2] == (400, "body")
    assert not Event.objects.exists()


def test_it_refuses_a_request_over_500_kb_with_413(api):
    messages = [track("x", f"u{i}", padding="p" * 20_000) for i in range(30)]
    response = api.batch(messages)
    status, field, reason = refusal(response)
    assert (status, field) == (413, "body") and reason.endswith(f"the limit is {MAX_REQUEST_BYTES}")
    assert not Event.objects.exists()


def test_it_refuses_a_small_gzip_body_that_inflates_past_500_kb_with_413(api):
    # Highly compressible: a few KB on the wire, well over 500 KB once inflated.
    messages = [track("x", f"u{i}", padding=" " * 30_000) for i in range(20)]
    raw = gzip.compress(json.dumps({"batch": messages}).encode())
    assert len(raw) < 20_000
    response = api.post("/v1/batch", raw, HTTP_CONTENT_ENCODING="gzip")
    assert refusal(response) == (413, "body", f"decompressed request exceeds {MAX_REQUEST_BYTES} bytes")
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ([track("x", "u1")], "body", "must be a JSON object with a 'batch' array"),
        ({"batch": {"0": track("x", "u1")}}, "batch", "must be an array of messages"),
        ({"messages": [track("x", "u1")]}, "batch", "must be an array of messages"),
        ({"batch": []}, "batch", "must contain at least one message"),
        ({"batch": [track("x", "u1")], "sentAt": "yesterday"}, "sentAt", "must be an ISO 8601 date-time"),
        ({"batch": [track("x", "u1")], "context": "web"}, "context", "must be an object"),
    ],
    ids=["array-body", "batch-object", "no-batch", "empty-batch", "bad-sentAt", "bad-context"],
)
def test_it_refuses_a_body_that_is_not_a_batch_with_400(api, body, field, reason):
    status, got_field, got_reason = refusal(api.post("/v1/batch", body))
    assert (status, got_field) == (400, field) and got_reason.startswith(reason)
    assert not Event.objects.exists()


def test_it_refuses_a_single_call_that_is_not_an_object(api):
    assert refusal(api.post("/v1/track", ["x"])) == (400, "body", "must be a JSON object (one track message)")


@pytest.mark.parametrize("path", ["/v1/track", "/v1/identify", "/v1/batch"])
def test_it_answers_405_to_get(client, path):
    response = client.get(path)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["errors"][0]["field"] == "method"


# --- One message at a time -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "field", "reason"),
    [
        ("a string", "message", "must be an object, not string"),
        ({"type": "track", "event": "x"}, "userId", "one of userId or anonymousId is required"),
        ({"type": "track", "userId": "u1"}, "event", "a track call needs an event name of 1 to 255 characters"),
        ({"type": "track", "userId": "u1", "event": "  "}, "event", "a track call needs an event name"),
        ({**track("x", "u1"), "properties": [1, 2]}, "properties", "must be an object, not array"),
        ({**track("x", "u1"), "context": "web"}, "context", "must be an object, not string"),
        ({**track("x", "u1"), "context": {"traits": "vip"}}, "context.traits", "must be an object, not string"),
        ({**track("x", "u1"), "userId": {"id": 1}}, "userId", "must be a string or a number, not object"),
        ({**track("x", "u1"), "userId": True}, "userId", "must be a string or a number, not boolean"),
        ({**track("x", "u1"), "userId": "u" * 256}, "userId", "must be at most 255 characters"),
        ({**track("x", "u1"), "event": "e" * 256}, "event", "a track call needs an event name of 1 to 255"),
        ({**track("x", "u1"), "type": "purchase"}, "type", "must be one of track, identify, page"),
        ({**track("x", "u1"), "messageId": ""}, "messageId", "must be a non-empty string"),
        ({**track("x", "u1"), "messageId": "m" * 256}, "messageId", "must be a non-empty string"),
        (identify("u1", "not-an-email"), "traits.email", "'not-an-email' is not a valid email address"),
        (identify("u1", "a" * 250 + "@example.com"), "traits.email", "is not a valid email address"),
        ({**identify("u1", "x@example.com"), "traits": 5}, "traits", "must be an object, not number"),
        (identify("u1", "x@example.com", timezone="Mars/Olympus"), "traits.timezone", "is not an IANA time zone"),
        (identify("u1", "x@example.com", locale="x" * 36), "traits.locale", "must be a language tag"),
        (
            {**track("x", "u1"), "context": {"traits": {"email": "nope"}}},
            "context.traits.email",
            "'nope' is not a valid email address",
        ),
        ({**track("x", "u1"), "context": {"timezone": "Nowhere"}}, "context.timezone", "is not an IANA time zone"),
        ({"type": "page", "userId": "u1", "name": "p" * 256}, "name", "must be at most 255 characters"),
        ({"type": "group", "userId": "u1"}, "groupId", "is required"),
        ({"type": "alias", "userId": "u1"}, "previousId", "is required"),
    ],
)
def test_it_names_the_bad_field_of_a_bad_message_and_stores_the_others(api, message, field, reason):
    response = api.batch([track("before", "u0"), message, track("after", "u0")])
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["success"], body["accepted"], body["rejected"]) == (False, 2, 1)
    [error] = body["errors"]
    assert (error["index"], error["field"]) == (1, field) and reason in error["reason"], error
    assert stored_names() == ["after", "before"]


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        ("2026-11-28T10:00:00", "must include a time zone offset, e.g. Z or +01:00"),
        ("2026-11-28", "must include a time zone offset, e.g. Z or +01:00"),
        ("2026-13-45T10:00:00Z", "must be an ISO 8601 date-time, e.g. 2026-11-28T10:00:00Z"),
        ("last tuesday", "must be an ISO 8601 date-time, e.g. 2026-11-28T10:00:00Z"),
        (1764324000, "must be an ISO 8601 date-time, e.g. 2026-11-28T10:00:00Z"),
        ("0001-01-01T00:00:00+14:00", "must be between 1970 and 3000"),
        ("9999-12-31T23:59:59-14:00", "must be between 1970 and 3000"),
    ],
)
def test_it_refuses_a_timestamp_it_cannot_place_in_time(api, timestamp, reason):
    response = api.post("/v1/track", {**track("x", "u1", message_id="m-1"), "timestamp": timestamp})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"index": 0, "messageId": "m-1", "field": "timestamp", "reason": reason}]
    assert not Event.objects.exists()


def test_it_refuses_a_timestamp_that_skew_correction_puts_before_1970(api):
    message = {**track("x", "u1"), "timestamp": "1971-01-01T00:00:00Z", "sentAt": "2999-01-01T00:00:00Z"}
    response = api.post("/v1/track", message)
    assert problems(response) == [(0, "timestamp")]
    assert "corrected by sentAt" in response.json()["errors"][0]["reason"]


def test_it_names_every_problem_of_a_message_with_its_message_id(api):
    response = api.batch([{"type": "track", "messageId": "m-7", "properties": "x"}])
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "accepted": 0,
        "rejected": 1,
        "errors": [
            {"index": 0, "messageId": "m-7", "field": "userId", "reason": "one of userId or anonymousId is required"},
            {
                "index": 0,
                "messageId": "m-7",
                "field": "event",
                "reason": "a track call needs an event name of 1 to 255 characters",
            },
            {"index": 0, "messageId": "m-7", "field": "properties", "reason": "must be an object, not string"},
        ],
    }


def test_it_refuses_another_type_on_a_single_message_endpoint(api):
    response = api.post("/v1/track", identify("u1", "u1@example.com"))
    assert response.json()["errors"][0]["reason"] == "this endpoint takes track messages; post others to /v1/batch"


def test_it_refuses_a_message_over_32_kb_with_413_and_stores_the_others(api):
    big = track("big", "u1", message_id="m-big", padding="p" * MAX_MESSAGE_BYTES)
    response = api.batch([track("small", "u1"), big])
    assert response.status_code == 413
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    [error] = body["errors"]
    assert (error["index"], error["messageId"], error["field"]) == (1, "m-big", "message")
    assert error["reason"].endswith(f"the limit is {MAX_MESSAGE_BYTES}")
    assert stored_names() == ["small"]


def test_it_counts_the_32_kb_in_utf8_bytes_not_characters(api):
    # 11,000 euro signs are 33,000 bytes of UTF-8 but only 11,000 characters.
    response = api.batch([track("x", "u1", note="€" * 11_000)])
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("raw_message", "field", "reason"),
    [
        ('{"type": "track", "event": "x", "userId": "u\\u0000"}', "userId", "contains a NUL character"),
        ('{"type": "track", "event": "x", "userId": "u1", "properties": {"k": "\\ud800"}}', "properties", "contains"),
        (
            '{"type": "track", "event": "x", "userId": "u1", "properties": ' + "[" * 40 + "]" * 40 + "}",
            "properties",
            "is nested",
        ),
    ],
    ids=["nul", "lone-surrogate", "deep"],
)
def test_it_refuses_json_the_database_cannot_store(api, raw_message, field, reason):
    raw = ('{"batch": [' + raw_message + ', {"type": "track", "event": "ok", "userId": "u1"}]}').encode()
    response = api.post("/v1/batch", raw)
    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert (error["index"], error["field"]) == (0, field) and error["reason"].startswith(reason)
    assert stored_names() == ["ok"]


def test_it_stores_text_that_only_looks_like_a_nul_escape_and_characters_beyond_the_bmp(api):
    note = "\\u0000 is how JSON writes NUL; 😀 is two UTF-16 code units"
    response = api.batch([track("x", "u1", note=note)])
    assert response.status_code == 200, response.content
    assert Event.objects.get().properties["note"] == note


def test_it_stores_many_objects_side_by_side_however_many_brackets(api):
    items = [{"sku": f"s{i}", "tags": ["a", "b"]} for i in range(40)]
    response = api.batch([track("x", "u1", items=items)])
    assert response.status_code == 200, response.content
    assert Event.objects.get().properties["items"] == items


@pytest.mark.parametrize(("depth", "status"), [(32, 200), (33, 400)])
def test_it_accepts_nesting_up_to_32_levels(api, depth, status):
    # The properties object is level 1; the arrays inside it are the other levels.
    lists = "[" * (depth - 1) + "]" * (depth - 1)
    raw = '{"type": "track", "event": "x", "userId": "u1", "properties": {"a": ' + lists + "}}"
    response = api.post("/v1/batch", ('{"batch": [' + raw + "]}").encode())
    assert response.status_code == status, response.content


def test_it_refuses_json_nested_too_deep_to_read(api):
    raw = b'{"batch": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    assert refusal(api.post("/v1/batch", raw))[:2] == (400, "body")


def test_it_refuses_a_body_larger_than_django_would_buffer_with_413(api):
    # Over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), where Django would answer its own 400.
    response = api.post("/v1/batch", b" " * 3_000_000)
    assert refusal(response) == (413, "body", f"request is 3000000 bytes; the limit is {MAX_REQUEST_BYTES}")


def test_it_stores_a_timestamp_whose_offset_postgresql_cannot_hold_as_its_instant(api):
    # ISO 8601 allows offsets up to ±23:59; PostgreSQL's timestamptz input only ±15:59, and it once
    # refused the whole request with a 500 (found by schemathesis).
    message = {**track("x", "u1"), "timestamp": "2026-08-31T01:41:06-19:06"}
    message.pop("sentAt", None)
    response = api.post("/v1/track", message)
    assert response.status_code == 200, response.content
    stored = Event.objects.get()
    assert stored.occurred_at == datetime(2026, 8, 31, 20, 47, 6, tzinfo=UTC)
