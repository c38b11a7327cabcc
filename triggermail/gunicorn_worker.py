"""gunicorn's threaded worker, with each request read whole by the event loop before a thread runs it.

Why: TriggerMail may face its clients directly (Heroku-style routers do not buffer requests), and
a worker that waits on a client's socket is the client's hostage. gunicorn's sync worker waits for
the whole request; its gthread worker hands a connection to a thread at the first byte, and the
thread then waits for the rest (measured: 50 connections sending a header byte per second leave
no thread for anyone else, and nothing ever closes them). Here the worker's event loop receives
the request head and body into a buffer, with a deadline for each (`WEB_HEAD_TIMEOUT`,
`WEB_BODY_TIMEOUT`), and a thread gets the request only when all of it has arrived. The
application stays synchronous WSGI; gunicorn's parser still parses every request, from the buffer.

The event loop also closes connections without waiting: gthread lingers on each closed connection
in its main thread for up to 2 s until the client closes its side, which a client that never does
turns into a stall of the whole worker.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn.errors import ConfigError
from gunicorn.http.unreader import Unreader
from gunicorn.util import http_date
from gunicorn.workers.gthread import TConn, ThreadWorker

from triggermail.gunicorn_conf import BODY_TIMEOUT, HEAD_TIMEOUT
from triggermail.http_framing import Framing, RequestTooLarge, request_end, request_head
from triggermail.metrics import ingest_rate_limited_count
from triggermail.refusals import early_refusal

# Like gunicorn's graceful close: after the answer, read what the client still sends for at most
# this long (and this much), so that the kernel does not reset the connection under the answer.
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 1024
# Deadlines are looked at no more often than this: a sweep walks every waiting connection.
SWEEP_INTERVAL = 0.25


class BufferedUnreader(Unreader):
    """gunicorn's input for one request: the bytes already received. Past them a read finds the end
    of input, never the socket, so a thread cannot wait on the client."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.buf.write(data)

    def chunk(self, size_hint: int | None = None) -> bytes:
        return b""


@dataclass(eq=False)
class _Reading:
    """A request being received by the event loop."""

    conn: TConn
    deadline: float
    # The bytes received so far: what keep-alive left over from the previous request, if anything.
    data: bytearray = field(default_factory=bytearray)
    framing: Framing | None = None
    watched: bool = False


class BufferingWorker(ThreadWorker):
    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        # TLS and HTTP/2 would need the event loop to speak them; TriggerMail serves plain HTTP/1.1
        # (the platform's router terminates TLS).
        if cfg.is_ssl or cfg.http2_cleartext != "off" or cfg.protocol != "http":
            raise ConfigError("triggermail.gunicorn_worker serves plain HTTP/1.1 only (no TLS, HTTP/2 or uwsgi)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.readings: dict[TConn, _Reading] = {}
        self.lingering: dict[TConn, float] = {}
        self.in_threads = 0
        self.swept_at = 0.0
        cfg = self.cfg
        # The longest head gunicorn's parser accepts: longer ones are refused, not awaited.
        self.head_max = cfg.limit_request_line + 2 + cfg.limit_request_fields * (cfg.limit_request_field_size + 2) + 2

    def run(self) -> None:
        from django.conf import settings

        # The application reads no body longer than Django's limit, so no longer one is awaited.
        self.body_max = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
        # The proxy's scheme header as it arrives (HTTP_X_FORWARDED_PROTO → x-forwarded-proto).
        proxy = settings.SECURE_PROXY_SSL_HEADER
        self.proto_header = proxy[0].removeprefix("HTTP_").replace("_", "-").lower().encode() if proxy else b""
        super().run()

    # --- Entry points gthread calls --------------------------------------------------------------

    def enqueue_req(self, conn: TConn) -> None:
        """gthread's hand-over to a thread, for a new connection, a kept-alive one that became
        readable, or one with a pipelined request already read: here the request is read first."""
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        conn.sock.setblocking(False)
        reading = _Reading(conn, deadline=time.monotonic() + HEAD_TIMEOUT, data=bytearray(leftover))
        self.readings[conn] = reading
        if not (leftover and self._framed(reading)):
            self._receive(reading)

    def set_accept_enabled(self, enabled: bool) -> None:
        # A worker takes new connections only while a thread is free: with every thread busy the
        # next connection is better off with another worker than queued here (sync workers balance
        # the same way). Connections still sending their request take no thread and do not count.
        super().set_accept_enabled(enabled and self.in_threads < self.cfg.threads)

    def finish_request(self, conn: TConn, fs: Future[Any]) -> None:
        self.in_threads -= 1
        if not fs.cancelled() and fs.exception() is None and fs.result():
            super().finish_request(conn, fs)
        else:
            self._linger(conn)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        if now - self.swept_at >= SWEEP_INTERVAL:
            self.swept_at = now
            self._sweep(now)

    # --- Receiving a request ---------------------------------------------------------------------

    def _receive(self, reading: _Reading, *_: Any) -> None:
        try:
            while True:
                chunk = reading.conn.sock.recv(65536)
                if not chunk:
                    # The client closed before finishing its request: nobody is left to answer.
                    self._close(reading.conn)
                    return
                reading.data += chunk
                if self._framed(reading):
                    return
        except BlockingIOError:
            if not reading.watched:
                reading.watched = True
                self.poller.register(reading.conn.sock, selectors.EVENT_READ, partial(self._receive, reading))
        except OSError:
            self._close(reading.conn)

    def _framed(self, reading: _Reading) -> bool:
        """Whether the request is settled (handed to a thread or refused); False: wait for more."""
        while True:
            framing = reading.framing
            if framing is None:
                try:
                    framing = request_head(reading.data, head_max=self.head_max)
                except RequestTooLarge:
                    self._refuse(reading.conn, b"431 Request Header Fields Too Large")
                    return True
                if framing is None:
                    return False
                reading.framing = framing
                reading.deadline = time.monotonic() + BODY_TIMEOUT
                if (framing.content_length or 0) > self.body_max:
                    self._hand_over_head(reading, framing)
                    return True
                if framing.expects_continue and request_end(reading.data, framing) is None:
                    self._send(reading.conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            end = request_end(reading.data, framing)
            if end is None:
                if len(reading.data) - framing.head_end > self.body_max:
                    self._refuse(reading.conn, b"413 Content Too Large")
                    return True
                return False
            answered = self._answered_early(reading, framing, end)
            if answered is None:
                self._hand_over(reading, bytes(reading.data))
                return True
            if answered:
                return True
            if not reading.data:
                return False
            # A pipelined request follows the refused one: frame it too.

    def _answered_early(self, reading: _Reading, framing: Framing, end: int) -> bool | None:
        """Answer 429 here if the request's Basic key is known to be refused (triggermail.refusals):
        None when not; True when the connection is closed; False when it waits for the next request."""
        answer = early_refusal(bytes(reading.data[: framing.head_end]), time.time(), proto_header=self.proto_header)
        if answer is None:
            return None
        # The same counter the view keeps, so /metrics counts every 429 whoever answered it.
        ingest_rate_limited_count(answer.key_id)
        keep_alive = answer.keep_alive and self.alive and self.cfg.keepalive > 0
        response = answer.http(keep_alive=keep_alive, date=http_date())
        try:
            sent = reading.conn.sock.send(response)
        except OSError:
            sent = 0
        if not keep_alive or sent < len(response):
            # A client that reads nothing fills its buffer and is let go rather than waited on.
            self._linger(reading.conn)
            return True
        del reading.data[:end]
        reading.framing = None
        reading.deadline = time.monotonic() + (HEAD_TIMEOUT if reading.data else self.cfg.keepalive)
        return False

    def _hand_over_head(self, reading: _Reading, framing: Framing) -> None:
        # A body too long to wait for: the application refuses it from its Content-Length (the
        # ingest answers 413) without reading it, and the connection closes after the answer.
        head = bytes(reading.data[: framing.head_end])
        line_end = head.index(b"\r\n") + 2
        self._hand_over(reading, head[:line_end] + b"Connection: close\r\n" + head[line_end:])

    def _hand_over(self, reading: _Reading, request: bytes) -> None:
        conn = reading.conn
        self._unwatch(reading)
        del self.readings[conn]
        conn.init()  # creates gunicorn's parser for a new connection; no I/O for plain HTTP
        conn.parser.unreader = BufferedUnreader(request)
        self.in_threads += 1
        super().enqueue_req(conn)
        if self.in_threads >= self.cfg.threads:
            self.set_accept_enabled(False)

    # --- Ending connections ----------------------------------------------------------------------

    def _refuse(self, conn: TConn, status: bytes) -> None:
        self._send(conn, b"HTTP/1.1 " + status + b"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        self._linger(conn)

    def _send(self, conn: TConn, data: bytes) -> None:
        # A few bytes into an empty send buffer: they fit, and a client that reads nothing loses them.
        with contextlib.suppress(OSError):
            conn.sock.send(data)

    def _linger(self, conn: TConn) -> None:
        """Close after the answer: send FIN, then read what the client still sends until it closes
        its side or LINGER_SECONDS pass, in the event loop rather than in a waiting thread."""
        reading = self.readings.pop(conn, None)
        if reading is not None:
            self._unwatch(reading)
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        self.lingering[conn] = time.monotonic() + LINGER_SECONDS
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._drain, conn, [0]))

    def _drain(self, conn: TConn, drained: list[int], *_: Any) -> None:
        try:
            while drained[0] < LINGER_BYTES:
                chunk = conn.sock.recv(65536)
                if not chunk:
                    break
                drained[0] += len(chunk)
        except BlockingIOError:
            return
        except OSError as error:
            if error.errno not in (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN):
                self.log.debug("Closing after a socket error: %s", error)
        self._close(conn)

    def _close(self, conn: TConn) -> None:
        reading = self.readings.pop(conn, None)
        if reading is not None:
            self._unwatch(reading)
        if self.lingering.pop(conn, None) is not None:
            self._unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    def _sweep(self, now: float) -> None:
        """Answer 408 to requests past their deadline and close connections done lingering."""
        for reading in [r for r in self.readings.values() if r.deadline <= now or (not self.alive and not r.data)]:
            if reading.data:
                self.log.info("Closing %s: request not received within its time limit", reading.conn.client)
                self._refuse(reading.conn, b"408 Request Timeout")
            else:
                self._close(reading.conn)
        for conn in [c for c, deadline in self.lingering.items() if deadline <= now]:
            self._close(conn)

    def _unwatch(self, reading: _Reading) -> None:
        if reading.watched:
            reading.watched = False
            self._unregister(reading.conn.sock)

    def _unregister(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(sock)
