"""A local SendGrid-compatible HTTP server for tests, benchmarks and the chaos suite.

It speaks the part of the v3 Web API that TriggerMail uses (POST /v3/mail/send), answers like
SendGrid (202, empty body, X-Message-Id) and keeps a ledger of every message it accepted, so a
test can count provider acceptances per idempotency key. Faults can be queued to answer the next
requests with an error, a delay, a 429 or a dropped connection.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "SG.test-key"


@dataclass
class Accepted:
    """One message the server accepted, as the provider would have queued it."""

    message_id: str
    received_at: float
    payload: dict[str, Any]

    @property
    def to(self) -> list[str]:
        return [r["email"] for p in self.payload.get("personalizations", []) for r in p.get("to", [])]

    @property
    def subject(self) -> str:
        return str(self.payload.get("subject", ""))

    @property
    def custom_args(self) -> dict[str, str]:
        return dict(self.payload.get("custom_args", {}))

    @property
    def key(self) -> str:
        return self.custom_args.get("triggermail_key", "")

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.payload.get("headers", {}))

    def content(self, mime: str) -> str:
        for part in self.payload.get("content", []):
            if part.get("type") == mime:
                return str(part.get("value", ""))
        return ""


@dataclass
class Fault:
    """How to answer one request instead of a plain 202.

    kind: "status" (answer `status` without accepting), "accept_then_drop" (accept, then close
    the connection without answering), "accept_then_delay" (accept, then wait `delay` seconds
    before answering 202, so a client with a shorter timeout gives up), "delay" (wait, then
    accept normally).
    """

    kind: str
    status: int = 500
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class SendGridServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0) -> None:
        self.latency = latency
        self.accepted: list[Accepted] = []
        self.requests = 0
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = str(self._server.server_address[0]), self._server.server_address[1]
        return f"http://{host}:{port}/v3/"

    def start(self) -> SendGridServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def reset(self) -> None:
        with self._lock:
            self.accepted.clear()
            self._faults.clear()
            self.requests = 0

    def keys(self) -> Counter[str]:
        """How many times each idempotency key was accepted (every value must be 1)."""
        with self._lock:
            return Counter(a.key for a in self.accepted)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Accepted]:
        """Wait until at least `count` messages were accepted; fail loudly after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.accepted) >= count:
                    return list(self.accepted)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} accepted messages within {timeout}s, got {len(self.accepted)}")

    def _next_fault(self) -> Fault | None:
        with self._lock:
            self.requests += 1
            return self._faults.pop(0) if self._faults else None

    def _accept(self, payload: dict[str, Any]) -> str:
        message_id = uuid.uuid4().hex[:22]
        with self._lock:
            self.accepted.append(Accepted(message_id=message_id, received_at=time.time(), payload=payload))
        return message_id

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    if body:
                        self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up waiting (a timeout fault); the message stays accepted.
                    self.close_connection = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v3/mail/send":
                    self._answer(404, b'{"errors":[{"message":"not found"}]}')
                    return
                if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    self._answer(401, b'{"errors":[{"message":"The provided authorization grant is invalid"}]}')
                    return
                try:
                    payload = json.loads(raw)
                except ValueError:
                    self._answer(400, b'{"errors":[{"message":"Bad Request"}]}')
                    return
                fault = server._next_fault()
                if server.latency:
                    time.sleep(server.latency)
                if fault is not None and self._apply(fault, payload):
                    return
                message_id = server._accept(payload)
                self._answer(202, headers={"X-Message-Id": message_id})

            def _apply(self, fault: Fault, payload: dict[str, Any]) -> bool:
                """Answer the fault; True when the request was fully answered (or dropped)."""
                if fault.kind == "delay":
                    time.sleep(fault.delay)
                    return False
                if fault.kind == "status":
                    body = json.dumps({"errors": [{"message": f"injected {fault.status}"}]}).encode()
                    self._answer(fault.status, body, fault.headers)
                    return True
                if fault.kind == "accept_then_drop":
                    server._accept(payload)
                    self.close_connection = True
                    self.connection.close()
                    return True
                if fault.kind == "accept_then_delay":
                    message_id = server._accept(payload)
                    time.sleep(fault.delay)
                    self._answer(202, headers={"X-Message-Id": message_id})
                    return True
                raise ValueError(f"unknown fault {fault.kind!r}")

        return Handler
