"""The registry of refused write keys (triggermail.refusals) that the web worker answers from: which
request heads it answers 429, with what, and which it leaves to the application."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator

import pytest

from triggermail import refusals
from triggermail.refusals import (
    EarlyAnswer,
    early_refusal,
    refusal_active,
    refusal_headers_note,
    refusal_note,
    refusals_clear,
    write_key_hash,
)

KEY = "tm_the-flooding-key"
NOW = 1_800_000_000.0
APP_HEADERS = [
    ("Content-Type", "application/json"),
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Length", "123"),
    ("Retry-After", "1"),
]
CONTEXT = (b"ingest.example.com", b"https")


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    refusals_clear()
    yield
    refusals_clear()


def head(
    key: str = KEY, *, path: bytes = b"/v1/track", method: bytes = b"POST", extra: bytes = b"", host: bytes = CONTEXT[0]
) -> bytes:
    auth = base64.b64encode(f"{key}:".encode())
    return (
        method + b" " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\nX-Forwarded-Proto: https\r\n"
        b"Authorization: Basic " + auth + b"\r\n" + extra + b"Content-Length: 2"
    )


def refused(*, until: float = NOW + 3, headers: list[tuple[str, str]] = APP_HEADERS) -> None:
    refusal_note(write_key_hash(KEY), now=NOW, until=until, key_id=7, limit="50 requests/s with bursts of 100")
    refusal_headers_note(write_key_hash(KEY), CONTEXT, headers)


def answer(request_head: bytes, now: float = NOW) -> EarlyAnswer | None:
    return early_refusal(request_head, now, proto_header=b"x-forwarded-proto")


def test_a_refused_key_is_answered_with_the_application_s_headers_and_body():
    refused()
    early = answer(head())

    assert early is not None and early.key_id == 7 and early.keep_alive
    reason = "this write key is over its limit of 50 requests/s with bursts of 100; retry after 3 s"
    assert json.loads(early.body) == {"success": False, "errors": [{"field": "writeKey", "reason": reason}]}
    assert early.headers == [
        ("Content-Type", "application/json"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Length", str(len(early.body))),
        ("Retry-After", "3"),
    ]


def test_the_whole_response_is_http_1_1_with_gunicorn_s_own_headers():
    refused()
    early = answer(head())
    assert early is not None

    response = early.http(keep_alive=False, date="Wed, 02 Dec 2026 04:30:00 GMT")
    status_and_headers, body = response.split(b"\r\n\r\n", 1)
    assert status_and_headers.split(b"\r\n")[:4] == [
        b"HTTP/1.1 429 Too Many Requests",
        b"Server: gunicorn",
        b"Date: Wed, 02 Dec 2026 04:30:00 GMT",
        b"Connection: close",
    ]
    assert body == early.body


def test_retry_after_counts_down_and_the_refusal_ends_by_then():
    refused(until=NOW + 3)
    assert [a.headers[-1] for a in [answer(head(), NOW + 0.5), answer(head(), NOW + 1.4)] if a] == [
        ("Retry-After", "3"),
        ("Retry-After", "2"),
    ]
    # By the time the key was told, the application asks the store again.
    assert answer(head(), NOW + 3) is None
    assert answer(head(), NOW + 1) is None  # forgotten, not only expired


def test_processes_forget_a_refusal_at_different_moments_in_the_second_half_of_its_wait(monkeypatch):
    # So that the web processes, which all refused a flood at about the same moment, do not all
    # ask the store again at once (and let a second's worth of the key's requests in together).
    # A seeded generator makes the draw the same on every run.
    monkeypatch.setattr(refusals, "random", random.Random(2026))
    hashes = [write_key_hash(f"tm_key-{n}") for n in range(20)]
    for n, key_hash in enumerate(hashes):
        refusal_note(key_hash, now=NOW, until=NOW + 2, key_id=n, limit="50 requests/s with bursts of 100")

    def remembered(at: float) -> int:
        return sum(refusal_active(h, at) is not None for h in hashes)

    assert remembered(NOW + 0.99) == 20
    assert 0 < remembered(NOW + 1.5) < 20
    assert remembered(NOW + 2) == 0


def test_other_keys_methods_and_paths_go_to_the_application():
    refused()
    assert answer(head("tm_another-key")) is None
    assert answer(head(method=b"GET")) is None
    assert answer(head(path=b"/admin/login/")) is None
    assert answer(head(path=b"/v1/openapi.json")) is None
    assert answer(head(path=b"/v1/batch?x=1")) is not None
    assert answer(head(path=b"/v1/identify")) is not None


def test_until_the_application_s_headers_are_known_the_application_answers():
    refusal_note(write_key_hash(KEY), now=NOW, until=NOW + 3, key_id=7, limit="50 requests/s with bursts of 100")
    assert answer(head()) is None


def test_a_request_in_another_context_goes_to_the_application():
    # Another Host may be refused by ALLOWED_HOSTS, plain HTTP may be redirected: Django decides.
    refused()
    assert answer(head(host=b"evil.example.com")) is None
    assert answer(head().replace(b"X-Forwarded-Proto: https", b"X-Forwarded-Proto: http")) is None


def test_an_answer_that_sets_a_cookie_is_never_replayed():
    refused(headers=[*APP_HEADERS, ("Set-Cookie", "sessionid=someone-s")])
    assert answer(head()) is None


def test_a_repeated_authorization_header_is_the_application_s_to_judge():
    refused()
    auth = b"Authorization: Basic " + base64.b64encode(b"tm_another-key:") + b"\r\n"
    assert answer(head(extra=auth)) is None


def test_connection_close_and_http_1_0_are_not_kept_alive():
    refused()
    closing = answer(head(extra=b"Connection: close\r\n"))
    old = answer(head().replace(b"HTTP/1.1", b"HTTP/1.0"))
    assert closing is not None and not closing.keep_alive
    assert old is not None and not old.keep_alive
