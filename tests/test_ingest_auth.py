"""Who may post events: a write key as HTTP Basic user name or as `writeKey` in the body."""

from __future__ import annotations

import base64
import json

from django.db import connection
from django.utils import timezone

from events.models import Event, WriteKey
from tests.conftest import identify, track


def test_it_accepts_the_write_key_as_the_basic_user_name(api, write_key):
    response = api.batch([track("cart_abandoned", "u1")])
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True}
    assert Event.objects.get().source == WriteKey.objects.get()


def test_it_accepts_the_write_key_in_the_body_as_official_sdks_send_it(api, write_key):
    batch = api.post("/v1/batch", {"batch": [track("cart_abandoned", "u1")], "writeKey": write_key}, key="")
    single = api.post("/v1/track", {**track("signed_up", "u2"), "writeKey": write_key}, key="")
    assert (batch.status_code, single.status_code) == (200, 200), (batch.content, single.content)
    assert sorted(Event.objects.values_list("name", flat=True)) == ["cart_abandoned", "signed_up"]


def test_it_accepts_a_basic_password_and_ignores_it(api, write_key, client):
    header = "Basic " + base64.b64encode(f"{write_key}:anything".encode()).decode()
    response = client.post("/v1/track", track("x", "u1"), content_type="application/json", HTTP_AUTHORIZATION=header)
    assert response.status_code == 200, response.content


def test_it_refuses_a_request_without_a_key_and_names_the_problem(api):
    response = api.batch([track("cart_abandoned", "u1")], key="")
    assert response.status_code == 401
    assert response.json() == {
        "success": False,
        "errors": [
            {"field": "writeKey", "reason": "no write key: send it as the HTTP Basic user name (empty password)"}
        ],
    }
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not Event.objects.exists()


def test_it_refuses_an_unknown_key(api):
    response = api.post("/v1/track", track("cart_abandoned", "u1"), key="tm_not-a-key")
    assert response.status_code == 401
    assert response.json()["errors"] == [{"field": "writeKey", "reason": "unknown write key"}]
    assert not Event.objects.exists()


def test_it_refuses_an_unknown_key_in_the_body(api):
    response = api.post("/v1/identify", {**identify("u1", "u1@example.com"), "writeKey": "tm_nope"}, key="")
    assert response.status_code == 401
    assert response.json()["errors"][0]["reason"] == "unknown write key"


def test_it_refuses_a_revoked_key(api, write_key):
    WriteKey.objects.update(revoked_at=timezone.now())
    response = api.batch([track("cart_abandoned", "u1")])
    assert response.status_code == 401
    assert response.json()["errors"][0]["reason"] == "this write key was revoked"
    assert not Event.objects.exists()


def test_it_refuses_a_basic_header_that_is_not_base64(client, write_key):
    response = client.post(
        "/v1/track", track("x", "u1"), content_type="application/json", HTTP_AUTHORIZATION="Basic %%%"
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["field"] == "writeKey"


def test_it_answers_401_before_judging_the_body_of_an_anonymous_caller(api):
    not_json = api.post("/v1/batch", b"not json", key="")
    wrong_type = api.post("/v1/batch", b"a=1", key="", content_type="application/x-www-form-urlencoded")
    assert (not_json.status_code, wrong_type.status_code) == (401, 401)


def test_it_stores_only_a_hash_of_the_key(api, write_key):
    # Post with the key in the body too, so a careless copy of the message would show up below.
    api.post("/v1/track", {**track("cart_abandoned", "u1"), "writeKey": write_key, "timestamp": "2026-01-01T00:00:00Z"})
    stored = WriteKey.objects.get()
    assert stored.prefix == write_key[:10] and len(stored.key_hash) == 64
    for table in (WriteKey._meta.db_table, Event._meta.db_table):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows = cursor.fetchall()
        assert rows
        assert write_key not in json.dumps(rows, default=str)
