"""The published schema and the server agree on every limit: what one refuses, the other refuses.

Each case is posted to the API and checked against the document's request schema (formats
asserted). A case passes when "the schema says valid" equals "the server stored it". The first
cases are the disagreements issue #11 found: sentAt null accepted but documented as a string; the
timestamp range, NUL characters and IANA zones enforced but not documented.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from events.contact_fields import time_zone_names
from events.models import Event
from events.openapi_schemas import YEAR_RANGE
from events.timestamps import EARLIEST, LATEST
from tests.conftest import Api

TRACK = {"event": "signed_up", "userId": "u1"}
IDENTIFY = {"userId": "u1", "traits": {"email": "u1@example.com"}}
LONG = "x" * 256


def _case(path: str, body: dict[str, Any], accepted: bool, case_id: str) -> Any:
    return pytest.param(path, body, accepted, id=case_id)


CASES = [
    _case("/v1/track", {**TRACK, "sentAt": None}, True, "sentAt-null"),
    _case("/v1/batch", {"batch": [{**TRACK, "type": "track"}], "sentAt": None}, True, "batch-sentAt-null"),
    _case("/v1/track", {**TRACK, "sentAt": "1969-12-31T23:59:59Z"}, False, "sentAt-before-1970"),
    _case("/v1/track", {**TRACK, "timestamp": "3000-01-01T00:00:00Z"}, False, "timestamp-year-3000"),
    _case("/v1/track", {**TRACK, "timestamp": "2999-06-01T00:00:00Z"}, True, "timestamp-year-2999"),
    _case("/v1/track", {**TRACK, "timestamp": "2026-11-28T10:00:00"}, False, "timestamp-without-offset"),
    _case("/v1/track", {**TRACK, "timestamp": None}, True, "timestamp-null"),
    _case(
        "/v1/track",
        {**TRACK, "timestamp": "2026-11-28T10:00:00Z", "originalTimestamp": ""},
        False,
        "originalTimestamp-bad-though-timestamp-wins",
    ),
    _case("/v1/track", {**TRACK, "originalTimestamp": "2026-11-28T10:00:00Z"}, True, "originalTimestamp-alone"),
    _case("/v1/track", {**TRACK, "properties": {"note": "a\x00b"}}, False, "nul-in-a-property"),
    _case("/v1/track", {**TRACK, "properties": {"a\x00": 1}}, False, "nul-in-a-key"),
    _case("/v1/track", {**TRACK, "userId": "u\x00"}, False, "nul-in-userId"),
    _case("/v1/track", {**TRACK, "extra": ["a\x00"]}, False, "nul-in-an-unknown-field"),
    _case("/v1/track", {**TRACK, "context": {"timezone": "Nowhere/Zone"}}, False, "context-timezone-not-iana"),
    _case("/v1/track", {**TRACK, "context": {"timezone": "Europe/Paris"}}, True, "context-timezone-iana"),
    _case("/v1/track", {**TRACK, "context": {"traits": {"timezone": "Mars/Olympus"}}}, False, "traits-timezone"),
    _case(
        "/v1/identify",
        {**IDENTIFY, "traits": {"timezone": "Europe/Paris"}, "context": {"timezone": "Nowhere"}},
        False,
        "context-timezone-bad-though-the-trait-wins",
    ),
    _case(
        "/v1/identify",
        {**IDENTIFY, "context": {"traits": {"email": "not an address"}}},
        False,
        "context-traits-email-bad-though-the-trait-wins",
    ),
    _case("/v1/identify", {**IDENTIFY, "traits": {"email": ""}}, True, "email-empty"),
    _case("/v1/identify", {**IDENTIFY, "traits": {"email": None}}, True, "email-null"),
    _case("/v1/identify", {**IDENTIFY, "traits": {"email": 5}}, False, "email-a-number"),
    _case("/v1/track", {**TRACK, "context": {"locale": "x" * 36}}, False, "locale-36-characters"),
    _case("/v1/track", {**TRACK, "userId": LONG}, False, "userId-256-characters"),
    _case("/v1/track", {**TRACK, "userId": LONG[:255]}, True, "userId-255-characters"),
    _case("/v1/track", {**TRACK, "userId": 42}, True, "userId-a-number"),
    _case("/v1/track", {**TRACK, "userId": True}, False, "userId-a-boolean"),
    _case("/v1/track", {**TRACK, "userId": ""}, False, "userId-empty-and-no-anonymousId"),
    _case("/v1/track", {**TRACK, "userId": None, "anonymousId": "a1"}, True, "anonymousId-only"),
    _case("/v1/track", {**TRACK, "anonymousId": LONG}, False, "anonymousId-256-characters"),
    _case("/v1/track", {**TRACK, "messageId": ""}, False, "messageId-empty"),
    _case("/v1/track", {**TRACK, "messageId": None}, True, "messageId-null"),
    _case("/v1/track", {**TRACK, "event": "   "}, False, "event-white-space"),
    _case("/v1/track", {**TRACK, "event": "x" * 250 + " " * 6}, False, "event-256-characters-with-spaces"),
    _case("/v1/track", {**TRACK, "event": 42}, True, "event-a-number"),
    _case("/v1/track", {**TRACK, "type": "identify"}, False, "type-of-another-endpoint"),
    _case("/v1/track", {**TRACK, "properties": None, "context": None}, True, "objects-null"),
    _case("/v1/track", {**TRACK, "properties": []}, False, "properties-an-array"),
    _case("/v1/track", {**TRACK, "writeKey": 5, "integrations": "any"}, True, "ignored-fields-of-any-type"),
    _case("/v1/batch", {"batch": [{"type": "group", "userId": "u1"}]}, False, "group-without-groupId"),
    _case("/v1/batch", {"batch": [{"type": "group", "userId": "u1", "groupId": ""}]}, False, "groupId-empty"),
    _case("/v1/batch", {"batch": [{"type": "alias", "userId": "u1", "previousId": 7}]}, True, "previousId-a-number"),
    _case("/v1/batch", {"batch": [{"type": "page", "userId": "u1", "name": LONG}]}, False, "page-name-256"),
    _case("/v1/batch", {"batch": [{**TRACK}]}, False, "batch-message-without-type"),
    # A batch's own writeKey is read (when a string) and never stored; a single message's is stored with it.
    _case("/v1/batch", {"batch": [{**TRACK, "type": "track"}], "writeKey": {"a\x00": 1}}, True, "batch-writeKey-nul"),
    _case("/v1/track", {**TRACK, "writeKey": "k\x00"}, False, "message-writeKey-nul"),
    _case("/v1/batch", {"batch": [{**TRACK, "type": "track"}], "context": None}, False, "batch-context-null"),
]


@pytest.fixture
def spec(client) -> dict[str, Any]:
    return json.loads(client.get("/v1/openapi.json").content)


def request_schema_valid(spec: dict[str, Any], path: str, body: Any) -> bool:
    schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    validator = Draft202012Validator(
        {**schema, "components": spec["components"]}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return validator.is_valid(body)


@pytest.mark.parametrize(("path", "body", "accepted"), CASES)
def test_the_schema_accepts_exactly_what_the_server_stores(spec, api: Api, path, body, accepted):
    response = api.post(path, body)
    assert (response.status_code == 200) == accepted, response.content
    assert Event.objects.exists() == accepted
    assert request_schema_valid(spec, path, body) == accepted


@pytest.mark.parametrize(
    ("number", "accepted"),
    [("1e400", False), ("-" + "9" * 400, True), ("9" * 5000, False), ("1.7e308", True), (str(10**308), True)],
    ids=["float-1e400", "integer-400-digits", "integer-5000-digits", "float-1.7e308", "integer-309-digits"],
)
def test_numbers_the_database_stores_are_accepted_by_both(spec, api: Api, number, accepted):
    # Python reads 1e400 as infinity, which PostgreSQL's jsonb cannot store; an integer written out
    # in full is stored exactly (issue #10's 400-digit total), up to the 4,300 digits Python converts.
    body = b'{"event": "x", "userId": "u1", "properties": {"n": %s}}' % number.encode()
    response = api.post("/v1/track", body)
    assert (response.status_code == 200) == accepted, response.content
    if not accepted:
        assert response.json()["errors"][0]["reason"].endswith("is too large to store")
    if len(number) < 4300:  # Python itself refuses to convert a longer integer
        assert request_schema_valid(spec, "/v1/track", json.loads(body)) == accepted


def test_the_year_pattern_is_the_range_the_parser_enforces():
    def allowed(year: int) -> bool:
        return re.match(YEAR_RANGE, f"{year:04d}-01-01T00:00:00Z") is not None

    assert allowed(EARLIEST.year) and allowed(LATEST.year - 1)
    assert not allowed(EARLIEST.year - 1) and not allowed(LATEST.year)


def test_the_time_zones_are_every_iana_zone_the_parser_accepts(spec):
    zones = spec["components"]["schemas"]["Context"]["properties"]["timezone"]["enum"]
    assert set(zones) == {*time_zone_names(), "", None}
    assert "Europe/Paris" in zones and "Nowhere/Zone" not in zones
