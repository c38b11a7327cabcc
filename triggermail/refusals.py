"""Write keys this process knows to be over their rate limit, answered 429 before Django runs.

events.ratelimit notes a refusal here (`refusal_note`) when the store refuses a key: the key cannot
fit before the `Retry-After` it was told, on any host, since a bucket's time only moves forward.
The WSGI entry point (triggermail.wsgi) then notes the headers the whole middleware stack gave that
429 (`refusal_headers_note`), and from then on the web worker's event loop answers the key's next
requests from their head alone (`early_refusal`): no thread, no Django, no query, the same status,
headers and JSON body the view gives. Measured (README, Speed, R1): the view's refusal was cheap, but
the path to it — a thread, Django's request, every middleware — cost ~2 ms of CPU per request, so a
flood at hundreds of requests/s took both cores from every other key.

This module lives in `triggermail`, which must not import `events` (import-linter): events fills
it, the worker reads it, both in the same process. Only keys sent as the HTTP Basic user are known
here; a key in the JSON body needs the body parsed, so it takes the normal path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
from dataclasses import dataclass, replace

# The ingest endpoints (events.urls under /v1/): only their POSTs are refused for a key.
INGEST_PATHS = frozenset({b"/v1/batch", b"/v1/import", b"/v1/track", b"/v1/identify"})
# Headers the early answer sets itself; the rest of the captured 429's headers are replayed.
_OWN_HEADERS = frozenset({"content-length", "retry-after", "date", "server", "connection"})


@dataclass(frozen=True)
class Refusal:
    until: float  # time.time() before which the key is refused (the Retry-After it was told)
    forget_at: float  # when this process stops answering for the store (see refusal_note)
    key_id: int
    limit: str  # the limit, described, e.g. "50 requests/s with bursts of 100"
    # The application's 429 headers for requests with this `context` (see _context); None: not yet.
    headers: tuple[tuple[str, str], ...] | None = None
    context: tuple[bytes, bytes] | None = None


@dataclass(frozen=True)
class EarlyAnswer:
    key_id: int
    headers: list[tuple[str, str]]  # the application's headers, then Content-Length and Retry-After
    body: bytes
    keep_alive: bool  # whether the client may send its next request on this connection

    def http(self, *, keep_alive: bool, date: str) -> bytes:
        """The whole HTTP/1.1 response, with the status line and headers gunicorn would write."""
        own = [("Server", "gunicorn"), ("Date", date), ("Connection", "keep-alive" if keep_alive else "close")]
        lines = [f"{name}: {value}\r\n" for name, value in [*own, *self.headers]]
        return ("HTTP/1.1 429 Too Many Requests\r\n" + "".join(lines) + "\r\n").encode("latin-1") + self.body


_refused: dict[str, Refusal] = {}


def write_key_hash(raw_key: str) -> str:
    # Write keys are 32 random bytes, so a fast hash is enough: there is nothing to brute-force,
    # and the lookup runs on every ingest request.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def basic_user(header: str) -> str:
    """The user name in an `Authorization: Basic …` value, or "" when there is none."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[0]


def refusal_reason(limit: str, retry_after: int) -> str:
    return f"this write key is over its limit of {limit}; retry after {retry_after} s"


def refusal_note(key_hash: str, *, now: float, until: float, key_id: int, limit: str) -> None:
    """Remember that the key, refused at `now`, was told to wait until `until` (time.time() values).

    This process answers for the store until a random point in the second half of that wait, not
    to its end: a flood is refused by every web process at about the same moment, and if they all
    asked the store again at the same moment, the key's bucket, refilled meanwhile, would let a
    second's worth of its requests in at once, all threads busy with them while other keys wait
    (measured in R1: the quiet key's p99 63-120 ms with whole waits, 23-53 ms with these). The
    `Retry-After` answered stays the one the client was told."""
    forget_at = now + (until - now) * random.uniform(0.5, 1.0)
    _refused[key_hash] = Refusal(until=until, forget_at=forget_at, key_id=key_id, limit=limit)


def refusal_headers_note(key_hash: str, context: tuple[bytes, bytes], headers: list[tuple[str, str]]) -> None:
    """Remember the headers the application answered the key's 429 with, for requests in `context`."""
    refusal = _refused.get(key_hash)
    # A cookie is one client's: an answer that sets one is never replayed to anyone.
    if refusal is not None and not any(n.lower() == "set-cookie" for n, _ in headers):
        kept = tuple((n, v) for n, v in headers if n.lower() not in _OWN_HEADERS)
        _refused[key_hash] = replace(refusal, headers=kept, context=context)


def refusal_active(key_hash: str, now: float) -> tuple[Refusal, int] | None:
    """The key's refusal and its Retry-After in whole seconds, while it lasts."""
    refusal = _refused.get(key_hash)
    if refusal is None:
        return None
    if now >= refusal.forget_at:
        # Over: the next request asks the store again (a limit raised in Admin applies from now).
        _refused.pop(key_hash, None)
        return None
    return refusal, max(1, math.ceil(refusal.until - now))


def refusals_clear() -> None:
    _refused.clear()


def request_context(host: bytes, forwarded_proto: bytes) -> tuple[bytes, bytes]:
    """What, besides the key, decides how the middleware answers: the Host (ALLOWED_HOSTS) and the
    proxy's scheme header (SECURE_SSL_REDIRECT, HSTS). An early answer is given only to a request
    whose context matches the one of the 429 whose headers were captured."""
    return host, forwarded_proto


def early_refusal(head: bytes, now: float, *, proto_header: bytes) -> EarlyAnswer | None:
    """The 429 for a request head whose Basic key is refused, or None: let the application answer.

    `proto_header` is the lower-case name of the proxy's scheme header (SECURE_PROXY_SSL_HEADER),
    or b"" without one.
    """
    request_line, _, rest = head.partition(b"\r\n")
    method, _, target = request_line.partition(b" ")
    target, _, version = target.partition(b" ")
    if method != b"POST" or target.partition(b"?")[0] not in INGEST_PATHS:
        return None
    fields = _fields(rest)
    try:
        raw_key = basic_user(fields.get(b"authorization", b"").decode("latin-1"))
    except ValueError:
        return None
    active = refusal_active(write_key_hash(raw_key), now) if raw_key else None
    if active is None:
        return None
    refusal, retry_after = active
    context = request_context(fields.get(b"host", b""), fields.get(proto_header, b"") if proto_header else b"")
    if refusal.headers is None or refusal.context != context:
        return None
    reason = refusal_reason(refusal.limit, retry_after)
    body = json.dumps({"success": False, "errors": [{"field": "writeKey", "reason": reason}]}).encode()
    headers = [*refusal.headers, ("Content-Length", str(len(body))), ("Retry-After", str(retry_after))]
    connection = fields.get(b"connection", b"").lower()
    keep_alive = connection != b"close" if version == b"HTTP/1.1" else connection == b"keep-alive"
    return EarlyAnswer(key_id=refusal.key_id, headers=headers, body=body, keep_alive=keep_alive)


def _fields(lines: bytes) -> dict[bytes, bytes]:
    # A field sent twice (two Authorization headers, say) is not ours to judge: the application
    # decides, so the request takes the normal path.
    fields: dict[bytes, bytes] = {}
    for line in lines.split(b"\r\n"):
        name, _, value = line.partition(b":")
        name = name.lower()
        fields[name] = b"\x00" if name in fields else value.strip(b" \t")
    return fields
