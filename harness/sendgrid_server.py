"""A local SendGrid-compatible HTTP server for tests, benchmarks and the chaos suite.

It speaks the part of the v3 Web API that TriggerMail uses (POST /v3/mail/send), answers like
SendGrid (202, empty body, X-Message-Id) and keeps a ledger of every message it accepted, so a
test can count provider acceptances per idempotency key. Faults can be queued to answer the next
requests with an error, a delay, a 429 or a dropped connection, or drawn at random at configured
rates (`FaultRates`, for the chaos suite); `injected` counts what was injected, by kind, and
`on_accept` is called with every accepted message (the chaos suite posts webhook events from it).
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
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
    # The client's (host, port): the chaos suite finds the worker process that made the call by it.
    client: tuple[str, int] | None = None

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
    def send_id(self) -> str:
        return self.custom_args.get("triggermail_send", "")

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
    # The name `injected` counts this fault under; queued faults leave it empty and are not counted.
    label: str = ""


@dataclass(frozen=True)
class FaultRates:
    """Probabilities (0..1, summing to at most 1) of answering a request with each fault.

    `client_timeout` is the client's read timeout: a "timeout" accepts the message and answers
    only after it (so the client gives up), a "slow" answer comes well within it.
    """

    slow: float = 0.0
    timeout: float = 0.0
    drop: float = 0.0
    rate_limited: float = 0.0
    server_error: float = 0.0
    client_timeout: float = 2.0
    seed: int | None = None

    def draw(self, rng: random.Random) -> Fault | None:
        roll = rng.random()
        for label, rate in self._rates():
            if roll < rate:
                return self._fault(label, rng)
            roll -= rate
        return None

    def _rates(self) -> list[tuple[str, float]]:
        return [
            ("slow", self.slow),
            ("timeout", self.timeout),
            ("drop", self.drop),
            ("429", self.rate_limited),
            ("500", self.server_error),
        ]

    def _fault(self, label: str, rng: random.Random) -> Fault:
        if label == "slow":
            return Fault(kind="delay", delay=rng.uniform(0.1, 0.4) * self.client_timeout, label=label)
        if label == "timeout":
            return Fault(kind="accept_then_delay", delay=self.client_timeout + 1.0, label=label)
        if label == "drop":
            return Fault(kind="accept_then_drop", label=label)
        if label == "429":
            # SendGrid says when to come back either way; the client must honour both headers.
            if rng.random() < 0.5:
                headers = {"Retry-After": str(rng.randint(1, 2))}
            else:
                headers = {"X-RateLimit-Reset": str(int(time.time()) + rng.randint(1, 3))}
            return Fault(kind="status", status=429, headers=headers, label=label)
        return Fault(kind="status", status=500, label=label)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A worker process opens up to DELIVERY_CONCURRENCY (50) connections at once, several workers
    # more; socketserver's backlog of 5 would reset the rest, which SendGrid's API does not do.
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that died mid-request (the chaos suite kills workers with SIGKILL) resets its
        # connection; that is the client's fault being simulated, not an error of this server.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class SendGridServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0) -> None:
        self.latency = latency
        self.accepted: list[Accepted] = []
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self.on_accept: Callable[[Accepted], None] | None = None
        self._faults: list[Fault] = []
        self._rates: FaultRates | None = None
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._server = _Server((host, port), self._handler_class())
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

    def fail_at_rates(self, rates: FaultRates | None) -> None:
        """Draw a fault for every request at these rates (after any queued ones); None stops it."""
        with self._lock:
            self._rates = rates
            if rates is not None and rates.seed is not None:
                self._rng.seed(rates.seed)

    def reset(self) -> None:
        with self._lock:
            self.accepted.clear()
            self._faults.clear()
            self._rates = None
            self.injected.clear()
            self.on_accept = None
            self.requests = 0

    def sends(self) -> Counter[str]:
        """How many times each send (by its id in the message's custom args) was accepted."""
        with self._lock:
            return Counter(a.send_id for a in self.accepted)

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
            if self._faults:
                return self._faults.pop(0)
            fault = self._rates.draw(self._rng) if self._rates is not None else None
            if fault is not None:
                self.injected[fault.label] += 1
            return fault

    def _accept(self, payload: dict[str, Any], client: tuple[str, int] | None = None) -> str:
        message_id = uuid.uuid4().hex[:22]
        accepted = Accepted(message_id=message_id, received_at=time.time(), payload=payload, client=client)
        with self._lock:
            self.accepted.append(accepted)
            on_accept = self.on_accept
        if on_accept is not None:
            on_accept(accepted)
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

            def _client(self) -> tuple[str, int]:
                return (str(self.client_address[0]), int(self.client_address[1]))

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
                message_id = server._accept(payload, self._client())
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
                    server._accept(payload, self._client())
                    self.close_connection = True
                    self.connection.close()
                    return True
                if fault.kind == "accept_then_delay":
                    message_id = server._accept(payload, self._client())
                    time.sleep(fault.delay)
                    self._answer(202, headers={"X-Message-Id": message_id})
                    return True
                raise ValueError(f"unknown fault {fault.kind!r}")

        return Handler
