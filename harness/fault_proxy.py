"""An HTTP proxy between an SDK and gunicorn that records every request and injects one fault.

It shows what an SDK really puts on the wire (content type, encoding, the decoded JSON) and lets a
test make the SDK retry the way production does: the ingest API commits the request, and then the
SDK never learns it did, because

- `503`: the answer is replaced by a 503, as a load balancer does when the app was slow;
- `drop`: the connection is closed without an answer, as when a network path breaks.

A correct SDK sends the same messages again, and TriggerMail must store them once (messageId).
"""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

FAULTS = ("", "503", "drop")
# Hop-by-hop headers are the proxy's own business; the body is forwarded whole, with its length.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length", "proxy-connection"}


@dataclass(frozen=True)
class Seen:
    """One request as the SDK sent it, and what the proxy did with it."""

    path: str
    content_type: str
    content_encoding: str
    document: Any
    status: int
    fault: str

    def message_ids(self) -> list[str]:
        batch = self.document.get("batch", []) if isinstance(self.document, dict) else []
        return [str(m.get("messageId")) for m in batch if isinstance(m, dict)]


class FaultProxy:
    """Forwards to `upstream`; the first request for which `when(document)` holds gets `fault`."""

    def __init__(self, upstream: str, *, fault: str = "", when: Callable[[Any], bool] = lambda document: True):
        assert fault in FAULTS, fault
        self.upstream = urlsplit(upstream)
        self.fault = fault
        self.when = when
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def faulted(self) -> list[Seen]:
        return [s for s in self.seen if s.fault]

    def _fault_for(self, document: Any) -> str:
        # Decided under the lock: an SDK with several upload threads must still meet the fault once.
        with self._lock:
            if not self.fault or self.faulted() or not self.when(document):
                return ""
            return self.fault

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[Any], bytes]:
        connection = http.client.HTTPConnection(self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers={**headers, "Content-Length": str(len(body))})
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


def _decoded(body: bytes, encoding: str) -> Any:
    try:
        return json.loads(gzip.decompress(body) if encoding == "gzip" else body)
    except (OSError, ValueError):
        return None


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as the SDKs expect: a dropped connection must be one they had reason to reuse.
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self._body()
            encoding = self.headers.get("Content-Encoding", "")
            document = _decoded(body, encoding)
            fault = proxy._fault_for(document)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            status, response_headers, answer = proxy.forward("POST", self.path, headers, body)
            content_type = self.headers.get("Content-Type", "")
            proxy._record(Seen(self.path, content_type, encoding, document, status, fault))
            if fault == "drop":
                self.close_connection = True
                return
            if fault == "503":
                status, response_headers, answer = 503, [("Content-Type", "application/json")], b'{"success": false}'
            self.send_response(status)
            for name, value in response_headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    return Handler
