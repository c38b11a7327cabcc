"""Reading Segment-compatible request bodies into validated messages.

A whole request can be refused (413 too large, 415 not JSON, 400 not an object); otherwise every
message is validated on its own, so one bad message names its field without losing the others.
A message that passes is storable as it is: nothing in it can make the database refuse the row.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from events.body import RequestRefused
from events.contact_fields import contact_fields_read
from events.storable import storable_size, unstorable
from events.timestamps import Problems, occurred_at_parse, timestamp_parse

MAX_MESSAGE_BYTES = 32 * 1024
SUPPORTED_TYPES = ("track", "identify", "page", "screen", "group", "alias")
MAX_NAME_LENGTH = 255


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
    # What the message says about the person who sent it (identify traits or context.traits),
    # already validated: this is what is merged into their Contact.
    contact_traits: dict[str, Any] = field(default_factory=dict)
    timezone: str = ""
    locale: str = ""
    # Its position in the request's batch (0 for a single call), for errors and warnings.
    index: int = 0


def _sent_at(document: dict[str, Any]) -> datetime | None:
    problems: Problems = []
    sent_at = timestamp_parse(document, "sentAt", problems)
    if problems:
        raise RequestRefused(400, *problems[0])
    return sent_at


def batch_parse(document: Any, *, received_at: datetime) -> tuple[list[Message], list[MessageError]]:
    if not isinstance(document, dict):
        raise RequestRefused(400, "body", "must be a JSON object with a 'batch' array")
    batch = document.get("batch")
    if not isinstance(batch, list):
        raise RequestRefused(400, "batch", "must be an array of messages")
    if not batch:
        raise RequestRefused(400, "batch", "must contain at least one message")
    shared_context = document.get("context", {})
    if not isinstance(shared_context, dict) or unstorable(shared_context):
        raise RequestRefused(400, "context", "must be an object of storable JSON")
    sent_at = _sent_at(document)
    messages: list[Message] = []
    errors: list[MessageError] = []
    for index, raw in enumerate(batch):
        # Segment applies a batch's top-level context to every message; the message's own wins.
        if shared_context and isinstance(raw, dict) and isinstance(raw.get("context", {}), dict):
            raw = {**raw, "context": {**shared_context, **raw.get("context", {})}}
        parsed = message_parse(raw, index=index, default_type=None, received_at=received_at, sent_at=sent_at)
        if isinstance(parsed, Message):
            messages.append(parsed)
        else:
            errors.extend(parsed)
    return messages, errors


def single_parse(document: Any, *, kind: str, received_at: datetime) -> tuple[list[Message], list[MessageError]]:
    if not isinstance(document, dict):
        raise RequestRefused(400, "body", f"must be a JSON object (one {kind} message)")
    sent_at = _sent_at(document)
    parsed = message_parse(document, index=0, default_type=kind, received_at=received_at, sent_at=sent_at)
    if isinstance(parsed, Message):
        return [parsed], []
    return [], parsed


# --- One message ----------------------------------------------------------------------------


def message_parse(
    raw: Any, *, index: int, default_type: str | None, received_at: datetime, sent_at: datetime | None
) -> Message | list[MessageError]:
    """One validated message, or the list of what is wrong with it."""
    if not isinstance(raw, dict):
        return [MessageError(index, "message", f"must be an object, not {_json_type(raw)}")]
    hint = _text(raw.get("messageId"))
    too_large = _size_errors(raw, index=index, hint=hint)
    if too_large:
        return too_large
    problems: Problems = []
    kind = _kind(raw, default_type, problems)
    user_id, anonymous_id = _ids(raw, problems)
    name = _name(raw, kind, problems)
    properties = {**_object(raw, "properties", problems), **_type_ids(raw, kind, problems)}
    context = _object(raw, "context", problems)
    contact_traits, zone, locale = _contact_fields(raw, kind, context, problems)
    occurred_at = occurred_at_parse(raw, sent_at, received_at, problems)
    message_id = _message_id(raw, problems)
    if problems:
        return [MessageError(index, key, reason, hint) for key, reason in problems]
    return Message(
        type=kind,
        message_id=message_id,
        name=name,
        user_id=user_id or anonymous_id,
        anonymous_id=anonymous_id,
        occurred_at=occurred_at,
        properties=properties,
        # A group call's own traits describe the group, not the person; both are stored.
        traits=_object(raw, "traits", []) if kind == "group" else contact_traits,
        context=context,
        contact_traits=contact_traits,
        timezone=zone,
        locale=locale,
        index=index,
    )


def _size_errors(raw: dict[str, Any], *, index: int, hint: str | None) -> list[MessageError]:
    """Why the message cannot be stored at its size or in its encoding; empty when it can."""
    size = storable_size(raw)
    if isinstance(size, tuple):
        return [MessageError(index, *size, hint)]
    if size > MAX_MESSAGE_BYTES:
        reason = f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES}"
        return [MessageError(index, "message", reason, hint, too_large=True)]
    return []


def _ids(raw: dict[str, Any], problems: Problems) -> tuple[str, str]:
    """userId and anonymousId; at least one of them is required."""
    user_id = _id(raw, "userId", problems)
    anonymous_id = _id(raw, "anonymousId", problems)
    if raw.get("userId") in (None, "") and raw.get("anonymousId") in (None, ""):
        problems.append(("userId", "one of userId or anonymousId is required"))
    return user_id, anonymous_id


def _contact_fields(
    raw: dict[str, Any], kind: str, context: dict[str, Any], problems: Problems
) -> tuple[dict[str, Any], str, str]:
    return contact_fields_read(
        # Only an identify call's own traits describe the person; a group call's describe the group.
        traits=_object(raw, "traits", problems) if kind == "identify" else {},
        context_traits=_object(context, "traits", problems, prefix="context."),
        context=context,
        problems=problems,
    )


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def _kind(raw: dict[str, Any], default_type: str | None, problems: Problems) -> str:
    kind = raw.get("type", default_type)
    if kind not in SUPPORTED_TYPES:
        problems.append(("type", f"must be one of {', '.join(SUPPORTED_TYPES)}"))
        return ""
    if default_type is not None and kind != default_type:
        problems.append(("type", f"this endpoint takes {default_type} messages; post others to /v1/batch"))
    return str(kind)


def _id(raw: dict[str, Any], key: str, problems: Problems, *, required: bool = False) -> str:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            problems.append((key, "is required"))
        return ""
    text = _text(value)
    if text is None:
        problems.append((key, f"must be a string or a number, not {_json_type(value)}"))
        return ""
    if len(text) > MAX_NAME_LENGTH:
        problems.append((key, f"must be at most {MAX_NAME_LENGTH} characters"))
    return text


def _name(raw: dict[str, Any], kind: str, problems: Problems) -> str:
    if kind == "track":
        # The limit is on what was sent, as for every other field (and as the schema can say).
        text = _text(raw.get("event")) or ""
        name = text.strip()
        if not name or len(text) > MAX_NAME_LENGTH:
            problems.append(("event", f"a track call needs an event name of 1 to {MAX_NAME_LENGTH} characters"))
        return name
    if kind in ("page", "screen"):
        return _id(raw, "name", problems).strip()
    return ""


def _type_ids(raw: dict[str, Any], kind: str, problems: Problems) -> dict[str, str]:
    # The Event row has no column for a group's or an alias's other id; keep it with the properties
    # (those calls carry none of their own) so nothing the SDK sent is lost.
    key = {"group": "groupId", "alias": "previousId"}.get(kind)
    if key is None:
        return {}
    return {key: _id(raw, key, problems, required=True)}


def _object(raw: dict[str, Any], key: str, problems: Problems, *, prefix: str = "") -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append((prefix + key, f"must be an object, not {_json_type(value)}"))
        return {}
    return value


def _message_id(raw: dict[str, Any], problems: Problems) -> str:
    value = raw.get("messageId")
    if value is None:
        # Without a messageId a retried request cannot be recognised unless it carries the same
        # timestamp (or originalTimestamp); a digest of the message then stands in for the id.
        # sentAt and writeKey are left out because a retry may send them differently.
        if raw.get("timestamp") is not None or raw.get("originalTimestamp") is not None:
            content = {k: v for k, v in raw.items() if k not in ("sentAt", "writeKey")}
            digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
            return f"digest-{digest}"
        return f"generated-{uuid.uuid4()}"
    text = _text(value)
    if not text or len(text) > MAX_NAME_LENGTH:
        problems.append(("messageId", f"must be a non-empty string of at most {MAX_NAME_LENGTH} characters"))
        return ""
    return text
