"""The web worker hands a request to a thread only when all of it has arrived: where it ends."""

from __future__ import annotations

import pytest

from triggermail.http_framing import Framing, RequestTooLarge, request_end, request_head

HEAD_MAX = 1000


def end_of(data: bytes) -> int | None:
    """Where the first request in `data` ends, or None while it is incomplete."""
    framing = request_head(data, head_max=HEAD_MAX)
    return None if framing is None else request_end(data, framing)


def test_it_waits_for_the_blank_line_that_ends_the_head():
    assert end_of(b"GET / HTTP/1.1\r\nHost: a\r\n") is None
    assert end_of(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 27


def test_it_waits_for_the_content_length_and_leaves_a_pipelined_request_alone():
    head = b"POST /v1/track HTTP/1.1\r\ncontent-LENGTH:  5 \r\n\r\n"
    assert end_of(head + b"{}") is None
    assert end_of(head + b'{"a"}GET / HTTP/1.1\r\n') == len(head) + 5


def test_it_waits_for_the_last_chunk_and_the_trailers():
    head = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    body = b"3;ext=1\r\nabc\r\n10\r\n" + b"x" * 16 + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
    for cut in range(len(body)):
        assert end_of(head + body[:cut]) is None, cut
    assert end_of(head + body + b"GET") == len(head) + len(body)


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Content-Length: 5\r\nContent-Length: 5\r\n",
        b"Content-Length: -5\r\n",
        b"Transfer-Encoding: chunked, gzip\r\n",
    ],
    ids=["length-and-chunked", "two-lengths", "negative", "not-chunked-last"],
)
def test_it_waits_for_no_body_when_the_framing_is_one_gunicorn_refuses(fields):
    # gunicorn's parser answers 400 from the head alone; waiting for a body would only delay that.
    data = b"POST / HTTP/1.1\r\n" + fields + b"\r\n"
    assert request_head(data, head_max=HEAD_MAX) == Framing(len(data), 0, expects_continue=False)


def test_it_notes_a_client_waiting_for_100_continue():
    framing = request_head(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 9\r\n\r\n", head_max=HEAD_MAX)
    assert framing is not None and framing.expects_continue


def test_it_refuses_a_head_longer_than_gunicorn_accepts_without_waiting_for_its_end():
    with pytest.raises(RequestTooLarge):
        request_head(b"GET / HTTP/1.1\r\nX: " + b"a" * HEAD_MAX, head_max=HEAD_MAX)
