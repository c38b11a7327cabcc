"""Where an HTTP/1.1 request ends in the bytes received so far (RFC 9112 sections 2, 6 and 7.1).

The web worker (`triggermail.gunicorn_worker`) collects each request in its event loop and hands
it to a thread only once all of it has arrived; this module answers "is all of it here?". It frames
requests and judges nothing else: gunicorn's own parser still parses every request, and a head
whose framing is ambiguous (both Content-Length and Transfer-Encoding, a malformed length) is
passed on at once for gunicorn to refuse, exactly as it would have without this module.
"""

from __future__ import annotations

from dataclasses import dataclass

_HEAD_END = b"\r\n\r\n"


class RequestTooLarge(Exception):
    """The head is longer than gunicorn would accept anyway (answered with 431, not awaited)."""


@dataclass(frozen=True)
class Framing:
    """What the head says about the body that follows it."""

    head_end: int  # offset just past the blank line that ends the head
    content_length: int | None  # None: the body is chunked
    expects_continue: bool  # the client waits for "100 Continue" before it sends the body


def request_head(data: bytes | bytearray, *, head_max: int) -> Framing | None:
    """The framing of the request at the start of `data`, or None while its head is incomplete."""
    end = data.find(_HEAD_END)
    if end < 0:
        if len(data) > head_max:
            raise RequestTooLarge(f"request head over {head_max} bytes")
        return None
    fields: dict[bytes, list[bytes]] = {}
    for line in bytes(data[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields.setdefault(name.lower(), []).append(value.strip(b" \t"))
    encodings = fields.get(b"transfer-encoding", [])
    lengths = fields.get(b"content-length", [])
    expects_continue = any(v.lower() == b"100-continue" for v in fields.get(b"expect", []))
    head_end = end + len(_HEAD_END)
    if encodings and not lengths and _chunked(encodings):
        return Framing(head_end, None, expects_continue)
    if not encodings and len(lengths) == 1 and lengths[0].isdigit():
        return Framing(head_end, int(lengths[0]), expects_continue)
    # No body, or framing gunicorn refuses with 400 from the head alone: nothing more to wait for.
    return Framing(head_end, 0, expects_continue=False)


def _chunked(encodings: list[bytes]) -> bool:
    codings = [c.strip(b" \t").lower() for value in encodings for c in value.split(b",")]
    return codings[-1:] == [b"chunked"]


def request_end(data: bytes | bytearray, framing: Framing) -> int | None:
    """The offset just past the request's last byte, or None while more of its body is to come."""
    if framing.content_length is not None:
        end = framing.head_end + framing.content_length
        return end if len(data) >= end else None
    return _chunked_end(data, framing.head_end)


def _chunked_end(data: bytes | bytearray, at: int) -> int | None:
    # Walk the chunk-size lines: the body ends after the zero-size chunk and the trailer section's
    # blank line. A size line that is not hexadecimal is gunicorn's to refuse: stop waiting there.
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None
        size_text = data[at:line_end].split(b";", 1)[0].strip(b" \t")
        try:
            size = int(size_text, 16)
        except ValueError:
            return line_end + 2
        if size == 0:
            trailer_end = data.find(_HEAD_END, line_end)
            return None if trailer_end < 0 else trailer_end + len(_HEAD_END)
        at = line_end + 2 + size + 2
        if len(data) < at:
            return None
