"""The OpenAPI document declares the rate limit's 429 (with Retry-After) and browser keys'
warnings, and the real answers match what it declares."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from openapi_spec_validator import validate

from events.models import WriteKey
from tests.conftest import Api, identify, track
from tests.test_openapi import ENDPOINTS, assert_documented

pytestmark = pytest.mark.django_db


@pytest.fixture
def spec(client: Client) -> dict[str, Any]:
    return client.get("/v1/openapi.json").json()


def test_every_ingest_endpoint_declares_429_with_retry_after(spec):
    validate(spec)
    for path in ENDPOINTS:
        answer = spec["paths"][path]["post"]["responses"]["429"]
        assert answer["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
        assert answer["headers"]["Retry-After"]["required"] is True


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_real_429_matches_the_document(spec, client, settings, path):
    settings.INGEST_RATE_LIMIT_STORE = "database"
    _, raw = WriteKey.issue(name="tiny", rate_limit=0.001, rate_burst=1)
    api = Api(client, raw)
    body = {"batch": [track("viewed", "u1")]} if path in ("/v1/batch", "/v1/import") else track("viewed", "u1")
    if path == "/v1/identify":
        body = identify("u1", "u1@example.com")
    api.post(path, body)

    refused = api.post(path, body)

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert_documented(spec, path, refused)


def test_a_browser_key_s_warnings_match_the_document(spec, client):
    _, raw = WriteKey.issue(name="web", kind=WriteKey.Kind.BROWSER)
    api = Api(client, raw)

    accepted = api.batch([identify("u1", "u1@example.com"), track("viewed", "u1")])
    partly = api.batch([identify("u1", "u1@example.com"), {"type": "track", "userId": "u1"}])

    assert accepted.json()["warnings"][0]["field"] == "traits"
    assert_documented(spec, "/v1/batch", accepted)
    assert partly.status_code == 400 and partly.json()["warnings"]
    assert_documented(spec, "/v1/batch", partly)
