"""Slow clients cannot starve the ingest: gunicorn as shipped (the Procfile's command line, so
triggermail/gunicorn_conf.py) against 50 connections that trickle their request a byte a second.

With gunicorn's sync workers, or its gthread workers, these connections hold every worker, so a
normal request waits until they give up; here the requests are answered at once, and the slow
connections are answered 408 and closed at their time limit. The limits are shortened through
their documented settings (WEB_HEAD_TIMEOUT, WEB_BODY_TIMEOUT) so that the test takes seconds.
"""

from __future__ import annotations

import base64
import json
import select
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from events.models import Event
from harness.processes import wait_until, web_serving

SLOW_CONNECTIONS = 50
TIME_LIMIT = 3  # seconds, for the request head and for the body
NORMAL_REQUESTS = 10
HEAD = b"POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"

pytestmark = pytest.mark.e2e


@pytest.fixture
def web(transactional_db, sendgrid_server, tmp_path, monkeypatch) -> Iterator[str]:
    monkeypatch.setenv("WEB_HEAD_TIMEOUT", str(TIME_LIMIT))
    monkeypatch.setenv("WEB_BODY_TIMEOUT", str(TIME_LIMIT))
    with web_serving(sendgrid_url=sendgrid_server.url, log_dir=tmp_path) as base_url:
        yield base_url


@dataclass
class SlowClients:
    """Connections that send `opening`, then one byte of `trickle` a second each, from one thread;
    each keeps the first bytes the server answers with and when the server closed it."""

    base_url: str
    opening: bytes
    trickle: bytes
    trickled: int = 0
    answers: dict[socket.socket, bytes] = field(default_factory=dict)
    closed: dict[socket.socket, float] = field(default_factory=dict)  # seconds after the opening
    stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> SlowClients:
        address = urlsplit(self.base_url)
        self.sockets = [socket.create_connection((address.hostname, address.port)) for _ in range(SLOW_CONNECTIONS)]
        for sock in self.sockets:
            sock.sendall(self.opening)
        self.opened = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock in self.sockets:
            sock.close()

    def _run(self) -> None:
        next_byte = time.monotonic() + 1
        while not self.stop.is_set() and len(self.closed) < len(self.sockets):
            open_sockets = [s for s in self.sockets if s not in self.closed]
            readable, _, _ = select.select(open_sockets, [], [], max(0.0, next_byte - time.monotonic()))
            for sock in readable:
                self._read(sock)
            if time.monotonic() >= next_byte and self.trickled < len(self.trickle):
                for sock in open_sockets:
                    if sock not in self.closed:
                        self._send(sock, self.trickle[self.trickled : self.trickled + 1])
                self.trickled += 1
                next_byte += 1

    def _read(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        self.answers[sock] = self.answers.get(sock, b"") + data
        if not data:
            self.closed[sock] = time.monotonic() - self.opened

    def _send(self, sock: socket.socket, data: bytes) -> None:
        try:
            sock.sendall(data)
        except OSError:
            self.closed[sock] = time.monotonic() - self.opened


def track(base_url: str, write_key: str, message_id: str) -> tuple[int, float]:
    body = json.dumps({"event": "signed_up", "userId": "u1", "messageId": message_id}).encode()
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    request = urllib.request.Request(
        f"{base_url}/v1/track",
        data=body,
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
    )
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=1) as response:
        return response.status, time.monotonic() - started


def assert_normal_requests_are_answered_at_once(base_url: str, write_key: str, prefix: str) -> None:
    answers = [track(base_url, write_key, f"{prefix}-{i}") for i in range(NORMAL_REQUESTS)]
    assert [status for status, _ in answers] == [200] * NORMAL_REQUESTS
    assert max(seconds for _, seconds in answers) < 1.0
    assert Event.objects.filter(message_id__startswith=prefix).count() == NORMAL_REQUESTS


def assert_the_server_answers_408_and_closes(slow: SlowClients) -> None:
    wait_until(lambda: len(slow.closed) == SLOW_CONNECTIONS, what="the server to close the slow connections")
    assert min(slow.closed.values()) >= TIME_LIMIT
    assert {answer.split(b"\r\n", 1)[0] for answer in slow.answers.values()} == {b"HTTP/1.1 408 Request Timeout"}


def test_connections_trickling_their_head_leave_normal_requests_answered_within_a_second(web, write_key):
    with SlowClients(web, opening=HEAD, trickle=b"X-Slow: " + b"a" * 60) as slow:
        # Every slow connection is in the middle of its head before the normal requests start.
        wait_until(lambda: slow.trickled >= 1, what="the slow connections to send a header byte")
        assert_normal_requests_are_answered_at_once(web, write_key, "head")
        assert_the_server_answers_408_and_closes(slow)


def test_connections_trickling_their_body_leave_normal_requests_answered_within_a_second(web, write_key):
    body = json.dumps({"event": "signed_up", "userId": "slow", "properties": {"pad": "a" * 60}}).encode()
    opening = HEAD + f"Content-Length: {len(body)}\r\n\r\n".encode()
    with SlowClients(web, opening=opening, trickle=body) as slow:
        wait_until(lambda: slow.trickled >= 1, what="the slow connections to send a body byte")
        assert_normal_requests_are_answered_at_once(web, write_key, "body")
        assert_the_server_answers_408_and_closes(slow)
    # Nothing of a body that never arrived whole was stored.
    assert not Event.objects.filter(user_id="slow").exists()


def connect(base_url: str) -> socket.socket:
    address = urlsplit(base_url)
    sock = socket.create_connection((address.hostname, address.port), timeout=10)
    return sock


def read_to_close(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def test_a_body_too_long_to_wait_for_is_refused_by_the_ingest_from_its_length(web, write_key):
    auth = base64.b64encode(f"{write_key}:".encode())
    with connect(web) as sock:
        sock.sendall(HEAD + b"Authorization: Basic " + auth + b"\r\nContent-Length: 3000000\r\n\r\n" + b"[" * 1000)
        answer = read_to_close(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in head
    assert json.loads(body)["errors"] == [{"field": "body", "reason": "request is 3000000 bytes; the limit is 512000"}]


def test_a_client_that_expects_100_continue_is_told_to_send_its_body(web, write_key):
    body = json.dumps({"event": "signed_up", "userId": "u2", "messageId": "continued"}).encode()
    auth = base64.b64encode(f"{write_key}:".encode())
    with connect(web) as sock:
        sock.sendall(
            HEAD + b"Authorization: Basic " + auth + b"\r\nExpect: 100-continue\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = read_to_close(sock)
    assert b"HTTP/1.1 200 OK\r\n" in answer
    assert Event.objects.filter(message_id="continued").exists()
