"""The load generator: a bare HTTP/1.1 client on asyncio, closed loop or open loop.

Bare, because the generator shares the machine's 2 cores with the system it measures: every CPU
cycle it spends is taken from gunicorn, the workers or PostgreSQL. Requests are prebuilt bytes
sent with `Connection: close` (gunicorn's sync workers close after every answer anyway), and the
answer is read to EOF and judged by its status line; no HTTP library sits in between.

- Closed loop (`closed_loop`): C connections, each posting its next request as soon as the last
  was answered, for a fixed time. Measures the most the server answers (P1, P2).
- Open loop (`open_loop`): requests start on a fixed schedule whatever the server does, so a
  server that falls behind shows up as lateness and errors, never as a quietly slower generator
  (P3, P5). Each request's start, answer time and status are recorded; `OpenLoopResult` reports
  the achieved rate against the target.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

REQUEST_TIMEOUT = 30.0
T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed: a cheaper event loop leaves more CPU to the server."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    write_key: str

    @classmethod
    def from_url(cls, base_url: str, write_key: str) -> Target:
        host, port = base_url.removeprefix("http://").rstrip("/").split(":")
        return cls(host=host, port=int(port), write_key=write_key)

    def request(self, path: str, body: bytes) -> bytes:
        """A complete POST request for this server, ready to write to a socket."""
        auth = base64.b64encode(f"{self.write_key}:".encode()).decode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        return head.encode() + body


async def post(target: Target, request: bytes, timeout: float = REQUEST_TIMEOUT) -> int:
    """Send one request; its HTTP status, or 0 when the connection failed or timed out."""
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(target.host, target.port)
            writer.write(request)
            answer = await reader.read()
        return int(answer[9:12]) if answer.startswith(b"HTTP/1.") else 0
    except (OSError, TimeoutError, ValueError):
        return 0
    finally:
        if writer is not None:
            writer.close()


@dataclass
class ClosedLoopResult:
    ok: int = 0
    failed: int = 0
    items_ok: int = 0
    elapsed: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def requests_per_second(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    @property
    def items_per_second(self) -> float:
        return self.items_ok / self.elapsed if self.elapsed else 0.0


async def closed_loop(
    target: Target,
    requests: Iterator[tuple[bytes, int]],
    *,
    connections: int,
    duration: float,
    on_answer: Callable[[int, int], None] | None = None,
) -> ClosedLoopResult:
    """Post (request, items in it) pairs on `connections` connections for `duration` seconds, or
    until `requests` runs out; `on_answer(index of the request, status)` hears every answer."""
    result = ClosedLoopResult()
    started = time.monotonic()
    deadline = started + duration
    taken = 0

    async def connection_loop() -> None:
        nonlocal taken
        while time.monotonic() < deadline:
            # A finite iterator ends the run early: "post these N requests as fast as you can".
            request, items = next(requests, (b"", 0))
            if not request:
                return
            index, taken = taken, taken + 1
            status = await post(target, request)
            if on_answer is not None:
                on_answer(index, status)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status == 200:
                result.ok += 1
                result.items_ok += items
            else:
                result.failed += 1

    await asyncio.gather(*(connection_loop() for _ in range(connections)))
    result.elapsed = time.monotonic() - started
    return result


@dataclass
class Sent:
    """One open-loop request: when it was due, when it started, when its answer arrived (epoch s)."""

    tag: Any
    due: float
    started: float = 0.0
    answered: float = 0.0
    status: int = -1  # -1: not sent (the generator was too many requests behind)


@dataclass
class OpenLoopResult:
    target_rate: float
    items_per_request: int
    sent: list[Sent]
    elapsed: float

    @property
    def accepted(self) -> list[Sent]:
        return [s for s in self.sent if s.status == 200]

    @property
    def achieved_rate(self) -> float:
        """Requests answered 200 per second of the schedule's length."""
        return len(self.accepted) / self.elapsed if self.elapsed else 0.0

    @property
    def start_lateness_max(self) -> float:
        """How far behind schedule the generator itself started a request (its own lag)."""
        return max((s.started - s.due for s in self.sent if s.status != -1), default=0.0)

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for s in self.sent:
            counts[s.status] = counts.get(s.status, 0) + 1
        return counts


async def open_loop(
    target: Target,
    path: str,
    bodies: Iterator[tuple[Any, bytes]],
    *,
    rate: float,
    count: int,
    items_per_request: int = 1,
    max_in_flight: int = 2000,
    on_answer: Callable[[Sent], None] | None = None,
) -> OpenLoopResult:
    """Start `count` requests at `rate` per second, each at its own time; wait for every answer.

    A request whose turn comes while `max_in_flight` are unanswered is not sent (status -1) and
    counted: the server is then minutes behind, and more open sockets would only measure the client.
    """
    sent: list[Sent] = []
    tasks: set[asyncio.Task[None]] = set()
    wall0, mono0 = time.time(), time.monotonic()

    async def one(item: Sent, request: bytes) -> None:
        item.started = time.time()
        item.status = await post(target, request)
        item.answered = time.time()
        if on_answer is not None:
            on_answer(item)

    for i, (tag, body) in enumerate(bodies):
        if i >= count:
            break
        pause = mono0 + i / rate - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        item = Sent(tag=tag, due=wall0 + i / rate)
        sent.append(item)
        if len(tasks) >= max_in_flight:
            continue
        task = asyncio.create_task(one(item, target.request(path, body)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    elapsed = max(time.monotonic() - mono0, count / rate)
    if tasks:
        await asyncio.gather(*tasks)
    return OpenLoopResult(target_rate=rate, items_per_request=items_per_request, sent=sent, elapsed=elapsed)
