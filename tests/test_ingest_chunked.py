"""Bodies sent with Transfer-Encoding: chunked and no Content-Length are read, within the same limits.

Django reads only CONTENT_LENGTH bytes of a body, so before this a chunked body was read as empty
and answered 415 "not JSON". gunicorn decodes the chunks and says so (wsgi.input_terminated); a
server that does not is answered 411 Length Required, which names the reason.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from events.body import MAX_REQUEST_BYTES
from events.models import Event
from tests.conftest import track


def chunked(body: bytes, size: int = 1000) -> bytes:
    """`body` in HTTP/1.1 chunked framing, `size` bytes a chunk."""
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def post_chunked(client: Any, write_key: str, path: str, body: bytes, *, terminated: bool = True, **extra: Any) -> Any:
    """What gunicorn hands Django for a chunked request: no CONTENT_LENGTH, the decoded body in
    wsgi.input, and wsgi.input_terminated when the server guarantees the stream ends with the body."""
    environ = {
        "CONTENT_LENGTH": "",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode(),
        "wsgi.input": io.BytesIO(body),
        **({"wsgi.input_terminated": True} if terminated else {}),
        **extra,
    }
    return client.post(path, b"", content_type="application/json", **environ)


def test_a_chunked_batch_is_read_and_stored(client, write_key):
    body = json.dumps({"batch": [track("signed_up", "u1", message_id="c-1")]}).encode()
    response = post_chunked(client, write_key, "/v1/batch", body)
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True}
    assert Event.objects.filter(message_id="c-1", name="signed_up").exists()


def test_a_gzipped_chunked_track_call_is_read_and_stored(client, write_key):
    body = gzip.compress(json.dumps({**track("ordered", "u2", message_id="c-2"), "type": "track"}).encode())
    response = post_chunked(client, write_key, "/v1/track", body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200, response.content
    assert Event.objects.filter(message_id="c-2").exists()


def test_a_chunked_body_over_the_limit_is_refused_with_413_and_nothing_is_stored(client, write_key):
    messages = [track("signed_up", f"u{i}", message_id=f"big-{i}", pad="p" * 20_000) for i in range(30)]
    body = json.dumps({"batch": messages}).encode()
    assert len(body) > MAX_REQUEST_BYTES
    response = post_chunked(client, write_key, "/v1/batch", body)
    assert response.status_code == 413
    assert response.json()["errors"] == [
        {"field": "body", "reason": f"chunked request is over the limit of {MAX_REQUEST_BYTES} bytes"}
    ]
    assert not Event.objects.exists()


def test_a_chunked_body_on_a_server_that_cannot_end_it_is_refused_with_411(client, write_key):
    body = json.dumps(track("signed_up", "u3")).encode()
    response = post_chunked(client, write_key, "/v1/track", body, terminated=False)
    assert response.status_code == 411
    assert response.json()["errors"] == [
        {"field": "Content-Length", "reason": "this server cannot read a chunked body: send a Content-Length"}
    ]
    assert not Event.objects.exists()


def test_an_anonymous_chunked_request_learns_only_401(client):
    response = post_chunked(client, "", "/v1/track", b"{}", terminated=False, HTTP_AUTHORIZATION="")
    assert response.status_code == 401


# --- Against gunicorn as shipped --------------------------------------------------------------


def raw_exchange(base_url: str, write_key: str, body: bytes) -> tuple[bytes, bytes]:
    """POST `body` chunked to /v1/batch over a socket; the answer's head and body."""
    address = urlsplit(base_url)
    auth = base64.b64encode(f"{write_key}:".encode())
    head = (
        b"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Transfer-Encoding: chunked\r\nAuthorization: Basic " + auth + b"\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(head + chunked(body, size=4096))
        answer = b""
        while data := sock.recv(65536):
            answer += data
    answer_head, _, answer_body = answer.partition(b"\r\n\r\n")
    return answer_head, answer_body


@pytest.mark.e2e
def test_gunicorn_reads_a_chunked_batch_and_refuses_one_over_the_limit(web, write_key):
    small = json.dumps({"batch": [track("signed_up", "u4", message_id="g-1")]}).encode()
    head, body = raw_exchange(web, write_key, small)
    assert head.startswith(b"HTTP/1.1 200 "), head + body
    assert json.loads(body) == {"success": True}
    assert Event.objects.filter(message_id="g-1").exists()

    messages = [track("signed_up", f"u{i}", message_id=f"g-big-{i}", pad="p" * 20_000) for i in range(30)]
    head, body = raw_exchange(web, write_key, json.dumps({"batch": messages}).encode())
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert json.loads(body)["errors"][0]["field"] == "body"
    assert not Event.objects.filter(message_id__startswith="g-big-").exists()
