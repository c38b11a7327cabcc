"""Reading an ingest request's body: size limits, gzip, JSON.

A request refused here (413 too large, 415 not JSON, 400 broken gzip) stores nothing.
"""

from __future__ import annotations

import json
import math
import re
import sys
import zlib
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

MAX_REQUEST_BYTES = 500 * 1024
# JSON nested deeper than this is refused before anything recurses through it.
MAX_DEPTH = 32
# The largest JSON number with a fraction or exponent stored: a larger one reads as infinity.
LARGEST_FLOAT = sys.float_info.max
# Integers written out in full are stored exactly, up to the digits Python converts (4,300).
MAX_INTEGER_DIGITS = sys.get_int_max_str_digits()
# analytics.js posts with text/plain to avoid a CORS preflight; any +json media type is JSON too.
_JSON_TYPE = re.compile(r"^(application/json|application/[\w.+-]+\+json|text/plain)$")
# RudderStack's Node SDK (@rudderstack/rudder-sdk-node 3.0.13) hands axios its gzip JSON as a raw
# buffer without a Content-Type, and axios labels it with its default for POST, this one. Such a body
# is read as JSON; one that is not JSON is what the label says, a form, and is refused as such.
_FORM_TYPE = "application/x-www-form-urlencoded"


class RequestRefused(Exception):
    """The whole request is refused; nothing in it was stored."""

    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.field = field
        self.reason = reason


def body_read(request: HttpRequest) -> Any:
    """The request's JSON document, gunzipped when sent with Content-Encoding: gzip."""
    content_type = request.content_type or ""
    wrong_type = RequestRefused(415, "Content-Type", f"send application/json, not {content_type}")
    if content_type and content_type != _FORM_TYPE and not _JSON_TYPE.match(content_type):
        raise wrong_type
    raw = _body_bytes(request)
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding == "gzip":
        raw = _gunzip(raw)
    elif encoding not in ("", "identity"):
        raise RequestRefused(415, "Content-Encoding", f"send gzip or no Content-Encoding, not {encoding}")
    try:
        return _json_load(raw)
    except RequestRefused as refused:
        if content_type == _FORM_TYPE and refused.status == 415:
            raise wrong_type from refused
        raise


def _too_large(size: int) -> RequestRefused:
    return RequestRefused(413, "body", f"request is {size} bytes; the limit is {MAX_REQUEST_BYTES}")


def _body_bytes(request: HttpRequest) -> bytes:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if not declared and _is_chunked(request):
        return _chunked_body_bytes(request)
    # Refuse on the declared length before reading: Django would otherwise buffer up to
    # DATA_UPLOAD_MAX_MEMORY_SIZE and then answer its own 400 instead of our 413.
    if declared > MAX_REQUEST_BYTES:
        raise _too_large(declared)
    try:
        raw = request.body
    except RequestDataTooBig as exc:
        raise _too_large(declared) from exc
    if len(raw) > MAX_REQUEST_BYTES:
        raise _too_large(len(raw))
    return raw


def _is_chunked(request: HttpRequest) -> bool:
    codings = request.META.get("HTTP_TRANSFER_ENCODING", "").lower().split(",")
    return codings[-1].strip() == "chunked"


def _chunked_body_bytes(request: HttpRequest) -> bytes:
    """A body sent with Transfer-Encoding: chunked and no Content-Length, read up to the limit.

    Django reads CONTENT_LENGTH bytes of a body, so none of a chunked one: request.body is empty.
    A server that sets wsgi.input_terminated (gunicorn does, having decoded the chunks) lets the
    application read wsgi.input to its end; without it, reading past the body could wait on the
    client forever, so the request is refused with 411 instead.
    """
    if not request.META.get("wsgi.input_terminated"):
        raise RequestRefused(411, "Content-Length", "this server cannot read a chunked body: send a Content-Length")
    stream = request.META["wsgi.input"]
    received = bytearray()
    # One byte past the limit is enough to know the body is too large; nothing more is read.
    while len(received) <= MAX_REQUEST_BYTES:
        data = stream.read(MAX_REQUEST_BYTES + 1 - len(received))
        if not data:
            return bytes(received)
        received += data
    raise RequestRefused(413, "body", f"chunked request is over the limit of {MAX_REQUEST_BYTES} bytes")


def _gunzip(raw: bytes) -> bytes:
    # Inflate at most one byte past the limit, so a small gzip bomb never expands in memory.
    # A gzip body may hold several members one after the other; each is inflated in turn.
    data = b""
    while raw:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data += decompressor.decompress(raw, MAX_REQUEST_BYTES + 1 - len(data))
        except zlib.error as exc:
            raise RequestRefused(400, "body", f"Content-Encoding is gzip but the body is not gzip: {exc}") from exc
        if len(data) > MAX_REQUEST_BYTES:
            raise RequestRefused(413, "body", f"decompressed request exceeds {MAX_REQUEST_BYTES} bytes")
        if not decompressor.eof:
            raise RequestRefused(400, "body", "Content-Encoding is gzip but the gzip stream is truncated")
        raw = decompressor.unused_data
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _number_too_large(text: str) -> RequestRefused:
    return RequestRefused(400, "body", f"the number {text[:40]} is too large to store")


def _finite_float(text: str) -> float:
    # A number such as 1e400 is JSON, but Python reads it as infinity, which would be written
    # back as Infinity: PostgreSQL would refuse the whole request at INSERT, and the SDK retry it.
    value = float(text)
    if math.isinf(value):
        raise _number_too_large(text)
    return value


def _bounded_int(text: str) -> int:
    # An integer written out in full is exact, and PostgreSQL's jsonb and SQLite store it exactly:
    # a 400-digit total is data to match (it is greater than 50), not a reason to refuse the batch
    # it came in (issue #10). Only what Python will not convert is refused, with a reason rather
    # than "not JSON"; the length is checked first so such a number is never converted.
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _number_too_large(text)
    return int(text)


def _json_load(raw: bytes) -> Any:
    try:
        # NaN and Infinity are accepted by Python's json module but are not JSON, and PostgreSQL's
        # jsonb refuses them: reject them here rather than fail at INSERT.
        return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except RecursionError as exc:
        raise RequestRefused(400, "body", f"JSON is nested more than {MAX_DEPTH} levels deep") from exc
    except ValueError as exc:
        raise RequestRefused(415, "body", f"body is not JSON: {exc}") from exc
