"""Reading Segment-compatible request bodies into validated messages.

A whole request can be refused (413 too large, 415 not JSON, 400 not an object); otherwise every
message is validated on its own, so one bad message names its field without losing the others.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest
from django.utils.dateparse import parse_datetime

MAX_MESSAGE_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
SUPPORTED_TYPES = ("track", "identify", "page", "screen", "group", "alias")
MAX_NAME_LENGTH = 255


class RequestRefused(Exception):
    """The whole request is refused; nothing in it was stored."""

    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class MessageError:
    index: int
    field: str
    reason: str
    message_id: str | None = None
    too_large: bool = False

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "field": self.field, "reason": self.reason}
        if self.message_id is not None:
            data["messageId"] = self.message_id
        return data


@dataclass(frozen=True)
class Message:
    type: str
    message_id: str
    name: str
    user_id: str
    anonymous_id: str
    occurred_at: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


def body_read(request: HttpRequest) -> Any:
    """The request's JSON document, gunzipped when sent with Content-Encoding: gzip."""
    content_type = request.content_type or ""
    if content_type and content_type not in ("application/json", "text/plain"):
        raise RequestRefused(415, "Content-Type", f"send application/json, not {content_type}")
    raw = request.body
    if len(raw) > MAX_REQUEST_BYTES:
        raise RequestRefused(413, "body", f"request is {len(raw)} bytes; the limit is {MAX_REQUEST_BYTES}")
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        raw = _gunzip(raw)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestRefused(415, "body", f"body is not JSON: {exc}") from exc


def _gunzip(raw: bytes) -> bytes:
    # Read one byte past the limit so a small bomb cannot expand into memory unchecked.
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(raw, MAX_REQUEST_BYTES + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise RequestRefused(400, "body", f"Content-Encoding is gzip but the body is not gzip: {exc}") from exc
    if len(data) > MAX_REQUEST_BYTES:
        raise RequestRefused(413, "body", f"decompressed request exceeds {MAX_REQUEST_BYTES} bytes")
    return data


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def _object(raw: dict[str, Any], key: str, errors: list[tuple[str, str]]) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append((key, f"must be an object, not {type(value).__name__}"))
        return {}
    return value


def _timestamp(raw: dict[str, Any], key: str, errors: list[tuple[str, str]]) -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        errors.append((key, "must be an ISO 8601 date-time, e.g. 2026-11-28T10:00:00Z"))
        return None
    if parsed.tzinfo is None:
        errors.append((key, "must include a time zone offset, e.g. Z or +01:00"))
        return None
    return parsed


def _message_id(raw: dict[str, Any], errors: list[tuple[str, str]]) -> str:
    value = raw.get("messageId")
    if value is None:
        # Without a messageId a retried request cannot be recognised unless it carries the same
        # timestamp; a digest of the whole message then stands in for the id.
        if raw.get("timestamp") is not None:
            digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
            return f"digest-{digest}"
        return f"generated-{uuid.uuid4()}"
    text = _text(value)
    if text is None or not text or len(text) > MAX_NAME_LENGTH:
        errors.append(("messageId", f"must be a non-empty string of at most {MAX_NAME_LENGTH} characters"))
        return ""
    return text


def message_parse(
    raw: Any, *, index: int, default_type: str | None, received_at: datetime, sent_at: datetime | None
) -> Message | list[MessageError]:
    """One validated message, or the list of what is wrong with it."""
    if not isinstance(raw, dict):
        return [MessageError(index, "message", f"must be an object, not {type(raw).__name__}")]
    message_id_hint = _text(raw.get("messageId"))
    size = len(json.dumps(raw, separators=(",", ":")))
    if size > MAX_MESSAGE_BYTES:
        reason = f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES}"
        return [MessageError(index, "message", reason, message_id_hint, too_large=True)]
    errors: list[tuple[str, str]] = []
    kind = raw.get("type", default_type)
    if kind not in SUPPORTED_TYPES:
        errors.append(("type", f"must be one of {', '.join(SUPPORTED_TYPES)}"))
    elif default_type is not None and kind != default_type:
        errors.append(("type", f"this endpoint takes {default_type} messages"))
    user_id = _text(raw.get("userId")) or ""
    anonymous_id = _text(raw.get("anonymousId")) or ""
    if not user_id and not anonymous_id:
        errors.append(("userId", "one of userId or anonymousId is required (a string)"))
    if len(user_id) > MAX_NAME_LENGTH or len(anonymous_id) > MAX_NAME_LENGTH:
        errors.append(("userId", f"ids are at most {MAX_NAME_LENGTH} characters"))
    name = ""
    if kind == "track":
        name = _text(raw.get("event")) or ""
        if not name.strip() or len(name) > MAX_NAME_LENGTH:
            errors.append(("event", f"a track call needs an event name of 1 to {MAX_NAME_LENGTH} characters"))
    elif kind in ("page", "screen"):
        name = _text(raw.get("name")) or ""
    properties = _object(raw, "properties", errors)
    traits = _object(raw, "traits", errors)
    context = _object(raw, "context", errors)
    if kind != "identify":
        traits = _object(context, "traits", errors) if isinstance(context.get("traits"), dict) else {}
    email = traits.get("email")
    if email not in (None, ""):
        try:
            validate_email(email)
        except (ValidationError, TypeError):
            errors.append(("traits.email", f"{email!r} is not a valid email address"))
    timestamp = _timestamp(raw, "timestamp", errors)
    message_id = _message_id(raw, errors)
    if errors:
        return [MessageError(index, key, reason, message_id_hint) for key, reason in errors]
    return Message(
        type=str(kind),
        message_id=message_id,
        name=name.strip(),
        user_id=user_id or anonymous_id,
        anonymous_id=anonymous_id,
        occurred_at=_occurred_at(timestamp, sent_at, received_at),
        properties=properties,
        traits=traits,
        context=context,
    )


def _occurred_at(timestamp: datetime | None, sent_at: datetime | None, received_at: datetime) -> datetime:
    if timestamp is None:
        return received_at
    if sent_at is not None:
        # Segment's clock-skew correction: the device's clock may be wrong, but the gap between
        # the action and the send is right, so measure it back from our own receive time.
        timestamp = received_at - (sent_at - timestamp)
    # An action cannot have happened after we received it.
    return min(timestamp, received_at)


def batch_parse(document: Any, *, received_at: datetime) -> tuple[list[Message], list[MessageError]]:
    if not isinstance(document, dict):
        raise RequestRefused(400, "body", "must be a JSON object with a 'batch' array")
    batch = document.get("batch")
    if not isinstance(batch, list):
        raise RequestRefused(400, "batch", "must be an array of messages")
    if not batch:
        raise RequestRefused(400, "batch", "must contain at least one message")
    header_errors: list[tuple[str, str]] = []
    sent_at = _timestamp(document, "sentAt", header_errors)
    if header_errors:
        raise RequestRefused(400, *header_errors[0])
    messages: list[Message] = []
    errors: list[MessageError] = []
    for index, raw in enumerate(batch):
        parsed = message_parse(raw, index=index, default_type=None, received_at=received_at, sent_at=sent_at)
        if isinstance(parsed, Message):
            messages.append(parsed)
        else:
            errors.extend(parsed)
    return messages, errors


def single_parse(document: Any, *, kind: str, received_at: datetime) -> tuple[list[Message], list[MessageError]]:
    if not isinstance(document, dict):
        raise RequestRefused(400, "body", f"must be a JSON object (one {kind} message)")
    sent_errors: list[tuple[str, str]] = []
    sent_at = _timestamp(document, "sentAt", sent_errors)
    if sent_errors:
        raise RequestRefused(400, *sent_errors[0])
    parsed = message_parse(document, index=0, default_type=kind, received_at=received_at, sent_at=sent_at)
    if isinstance(parsed, Message):
        return [parsed], []
    return [], parsed


def write_key_from_body(document: Any) -> str:
    if isinstance(document, dict) and isinstance(document.get("writeKey"), str):
        return str(document["writeKey"])
    return ""
