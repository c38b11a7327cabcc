"""The write-key cache (events/auth.py, issue #15): a revoked key stops working within
WRITE_KEY_CACHE_SECONDS, in this process with a moved clock and in a running web server."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import WriteKey, write_key_hash
from harness.processes import wait_until, web_serving
from harness.sendgrid_server import SendGridServer
from tests.conftest import Api, track


def _revoke(raw: str) -> None:
    WriteKey.objects.filter(key_hash=write_key_hash(raw)).update(revoked_at=timezone.now())


def test_a_revoked_key_works_until_the_bound_and_is_refused_from_then_on(api, write_key, settings, key_cache_clock):
    settings.WRITE_KEY_CACHE_SECONDS = 5.0
    assert api.batch([track("page_viewed", "u1")]).status_code == 200

    _revoke(write_key)
    key_cache_clock(4.9)
    assert api.batch([track("page_viewed", "u2")]).status_code == 200
    key_cache_clock(0.1)
    response = api.batch([track("page_viewed", "u3")])
    assert response.status_code == 401
    assert response.json()["errors"] == [{"field": "writeKey", "reason": "this write key was revoked"}]


def test_with_the_cache_off_a_revoked_key_is_refused_on_its_next_request(api, write_key, settings):
    settings.WRITE_KEY_CACHE_SECONDS = 0
    assert api.batch([track("page_viewed", "u1")]).status_code == 200
    _revoke(write_key)
    assert api.batch([track("page_viewed", "u2")]).status_code == 401


def test_the_cache_saves_the_lookup_and_an_unknown_key_is_not_remembered(client, write_key, settings):
    settings.WRITE_KEY_CACHE_SECONDS = 5.0
    api = Api(client, write_key)
    with CaptureQueriesContext(connection) as first:
        assert api.batch([track("page_viewed", "u1")]).status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert api.batch([track("page_viewed", "u2")]).status_code == 200
    assert [q for q in first.captured_queries if "events_writekey" in q["sql"]]
    assert not [q for q in second.captured_queries if "events_writekey" in q["sql"]]

    # A key unknown on one request works on the next once it exists: only rows found are kept.
    raw = "tm_" + "x" * 40
    assert Api(client, raw).batch([track("page_viewed", "u3")]).status_code == 401
    WriteKey.objects.create(name="late", prefix=raw[:10], key_hash=write_key_hash(raw))
    assert Api(client, raw).batch([track("page_viewed", "u4")]).status_code == 200


def _post(base_url: str, raw: str, n: int) -> int:
    auth = "Basic " + base64.b64encode(f"{raw}:".encode()).decode()
    body = {"type": "track", "event": "page_viewed", "userId": f"u{n}", "messageId": f"m-{n}"}
    return requests.post(f"{base_url}/v1/track", json=body, headers={"Authorization": auth}, timeout=10).status_code


@pytest.mark.django_db(transaction=True)
def test_a_key_revoked_while_a_web_server_runs_stops_working_within_the_bound(
    sendgrid_server: SendGridServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    bound = 1.0
    monkeypatch.setenv("WRITE_KEY_CACHE_SECONDS", str(bound))
    monkeypatch.setenv("INGEST_RATE_LIMIT_ENABLED", "false")
    _, raw = WriteKey.issue(name="revoked while running")
    with web_serving(sendgrid_url=sendgrid_server.url, log_dir=tmp_path) as base_url:
        # Every process and thread that answers has read the key (2 workers x 2 threads, by turns).
        assert [_post(base_url, raw, n) for n in range(8)] == [200] * 8
        _revoke(raw)
        revoked = time.monotonic()
        answers: list[tuple[float, int]] = []  # (seconds after the revocation the request started, status)

        def twenty_past_the_bound() -> bool:
            answers.append((time.monotonic() - revoked, _post(base_url, raw, 100 + len(answers))))
            return sum(after > bound for after, _ in answers) >= 20

        # Post until 20 requests started past the bound have been answered (a deadline: the wait).
        wait_until(
            twenty_past_the_bound,
            what=f"20 answers to requests started {bound} s after the revocation",
            timeout=bound + 30,
            interval=0.01,
        )
    assert {status for _, status in answers} <= {200, 401}, answers
    # Before the bound either answer is right; from it on, the key is refused by every process.
    assert [status for after, status in answers if after > bound] == [401] * 20, answers
