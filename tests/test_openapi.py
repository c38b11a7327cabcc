"""The published OpenAPI description: valid, complete, and true to what the API really answers."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from django.utils import timezone
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from events.models import WriteKey
from tests.conftest import Api, identify, track

ENDPOINTS = ["/v1/track", "/v1/identify", "/v1/batch", "/v1/import"]


@pytest.fixture
def spec(client) -> dict[str, Any]:
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def schema_validator(spec: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    # Local $refs ("#/components/...") resolve against the root, so the components ride along.
    return Draft202012Validator({**schema, "components": spec["components"]})


def assert_documented(spec: dict[str, Any], path: str, response: Any) -> None:
    """The answer's status is documented for the path, and its JSON matches the documented schema."""
    documented = spec["paths"][path]["post"]["responses"]
    status = str(response.status_code)
    assert status in documented, f"{path} answered undocumented {status}"
    schema = documented[status]["content"]["application/json"]["schema"]
    errors = [e.message for e in schema_validator(spec, schema).iter_errors(response.json())]
    assert not errors, (path, status, response.json(), errors)


def test_it_is_a_valid_openapi_3_1_document(spec):
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    assert spec["servers"] == [{"url": "http://testserver"}]


def test_it_describes_the_three_endpoints_with_basic_auth_and_every_answer(spec):
    assert sorted(spec["paths"]) == sorted(ENDPOINTS)
    scheme = spec["components"]["securitySchemes"]["writeKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "basic")
    assert spec["security"] == [{"writeKey": []}]
    for path in ENDPOINTS:
        assert {"200", "400", "401", "413", "415"} <= set(spec["paths"][path]["post"]["responses"])


def test_it_documents_every_field_of_a_message(spec):
    schemas = spec["components"]["schemas"]
    track_fields = set(
        spec["paths"]["/v1/track"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    )
    assert {"type", "event", "userId", "anonymousId", "properties", "context", "timestamp", "messageId"} <= track_fields
    assert {"writeKey", "sentAt"} <= track_fields
    assert "traits" in schemas["IdentifyMessage"]["properties"]
    assert {"batch", "sentAt", "writeKey"} <= set(schemas["Batch"]["properties"])


@pytest.mark.parametrize("path", ENDPOINTS)
def test_its_request_examples_match_their_schema_and_are_accepted(spec, api, path):
    body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    assert not list(schema_validator(spec, body["schema"]).iter_errors(body["example"]))
    response = api.post(path, body["example"])
    assert response.status_code == 200, response.content
    assert_documented(spec, path, response)


def test_its_request_schema_refuses_what_the_api_refuses(spec):
    schema = spec["paths"]["/v1/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    validator = schema_validator(spec, schema)
    assert validator.is_valid({"batch": [track("x", "u1")]})
    assert not validator.is_valid({"batch": []})
    assert not validator.is_valid({"batch": [{"type": "track", "userId": "u1"}]})
    assert not validator.is_valid({"batch": [{"type": "track", "event": "x"}]})
    assert not validator.is_valid({"batch": [{"type": "purchase", "userId": "u1"}]})


def _answers(api: Api) -> list[tuple[str, Any]]:
    """One real answer of every documented kind, from the running API."""
    big = track("big", "u1", padding="p" * 40_000)
    answers = [
        ("/v1/batch", api.batch([track("x", "u1"), identify("u1", "u1@example.com")])),
        ("/v1/track", api.post("/v1/track", track("x", "u1"), gzipped=True)),
        ("/v1/identify", api.post("/v1/identify", identify("u1", "u1@example.com"))),
        ("/v1/batch", api.batch([track("x", "u1"), {"type": "track", "messageId": "m-bad"}])),
        ("/v1/batch", api.post("/v1/batch", {"batch": "no"})),
        ("/v1/track", api.post("/v1/track", {"event": "x"})),
        ("/v1/identify", api.post("/v1/identify", identify("u1", "nope"))),
        ("/v1/batch", api.batch([track("x", "u1")], key="")),
        ("/v1/track", api.post("/v1/track", track("x", "u1"), key="tm_unknown")),
        ("/v1/batch", api.batch([track("x", "u1"), big])),
        ("/v1/batch", api.batch([track("x", f"u{i}", padding="p" * 30_000) for i in range(20)])),
        ("/v1/batch", api.post("/v1/batch", gzip.compress(b" " * 600_000), HTTP_CONTENT_ENCODING="gzip")),
        ("/v1/track", api.post("/v1/track", b"<xml/>", content_type="application/xml")),
        ("/v1/identify", api.post("/v1/identify", b"{nope")),
    ]
    WriteKey.objects.update(revoked_at=timezone.now())
    answers.append(("/v1/identify", api.post("/v1/identify", identify("u1", "u1@example.com"))))
    return answers


def test_real_answers_match_the_documented_response_schemas(spec, api):
    answers = _answers(api)
    assert {r.status_code for _, r in answers} == {200, 400, 401, 413, 415}
    for path, response in answers:
        assert_documented(spec, path, response)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_the_405_answer_matches_its_documented_schema(spec, client, path):
    schema = spec["paths"][path]["post"]["responses"]["405"]["content"]["application/json"]["schema"]
    assert schema_validator(spec, schema).is_valid(json.loads(client.get(path).content))
